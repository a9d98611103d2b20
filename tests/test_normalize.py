from qa.text.normalize import detect_script, fold_width, in_script, normalize, to_simplified, to_traditional


def test_traditional_becomes_simplified_with_same_length():
    text = "經開區着力推動高質量發展，2019年經濟總量達到1350億"
    out = normalize(text)
    assert out == "经开区着力推动高质量发展,2019年经济总量达到1350亿"
    assert len(out) == len(text)


def test_full_width_digits_letters_and_punctuation_fold_to_half_width():
    assert fold_width("ＡＢＣ１２３！？（）　") == "abc123!?() "
    assert normalize("６０４.５亿元") == "604.5亿元"


def test_enumeration_comma_and_full_stop_are_kept():
    # 、 separates list items and 。 ends sentences: folding them would lose that.
    assert normalize("新材料、生物医药。") == "新材料、生物医药。"


def test_simplified_to_traditional_for_answers():
    assert to_traditional("1350亿") == "1350億"
    assert in_script("1350億", "simplified") == "1350亿"
    assert in_script("604.5亿元", "traditional") == "604.5億元"


def test_script_detection():
    assert detect_script("新材料产业产值是多少") == "simplified"
    assert detect_script("新材料產業產值是多少") == "traditional"
    assert detect_script("1350是多少") == "simplified"


def test_length_is_kept_even_where_opencc_changes_phrase_length():
    text = "這裡有很多種乾燥劑，還有頭髮"
    assert len(to_simplified(text)) == len(text)
