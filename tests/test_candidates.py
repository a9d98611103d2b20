from qa.text.normalize import normalize
from qa.read.candidates import extract_candidates


def spans(text, kind):
    norm = normalize(text)
    return [text[s:e] for s, e, k in extract_candidates(norm, 0, len(norm)) if k == kind]


def test_amounts_keep_units_and_qualifiers():
    text = "2020年实现工业总产值604.5亿元,确保全年实到外资8000万美元,面积约2.3万平方米,回归资金21亿元以上。"
    assert spans(text, "amount") == ["604.5亿元", "8000万美元", "2.3万平方米", "21亿元以上"]


def test_traditional_amounts_are_found_and_quoted_in_the_original_script():
    assert spans("2019年經濟總量達到1350億,其中規上工業產值1044億", "amount") == ["1350億", "1044億"]


def test_a_figure_in_wan_keeps_what_it_counts_or_measures():
    """「3.7万人」 counts people and 「418万标准箱」 measures containers: cut at 万 they would lose it.
    A bare 万 or 亿 with nothing after it is still an amount."""
    text = "全镇常住人口3.7万人,港口吞吐量418万标准箱,用电12亿千瓦时,经济总量1350亿,投资3万,用于改造。"
    assert spans(text, "count") == ["3.7万人"]
    assert spans(text, "amount") == ["418万标准箱", "12亿千瓦时", "1350亿", "3万"]
    # a character that only starts the next word is not what the figure counts
    words = "总投资50亿人民币,总量1350亿位居全省第一,突破1000亿大关,营收3亿年均增长。"
    assert spans(words, "amount") == ["50亿", "1350亿", "1000亿", "3亿"]
    assert spans(words, "count") == []
    assert spans("化石距今5.15亿年", "count") == ["5.15亿年"]


def test_percentages():
    assert spans("增长16.7%,占全区的66%,提高3个百分点", "percent") == ["16.7%", "66%", "3个百分点"]


def test_counts_with_measure_words():
    assert spans("落户企业超过1000家,引进项目10只、人才200余名", "count") == ["1000家", "10只", "200余名"]


def test_a_month_after_a_year_is_a_date_not_a_count():
    assert spans("2019年1月,实现整合", "count") == []
    assert spans("2019年1月,实现整合", "date") == ["2019年1月"]


def test_ranks():
    assert spans("在全国219个国家级开发区中排名第92位,跻身全国化工园区30强", "rank") == ["第92位", "30强"]


def test_dates():
    assert spans("2013年12月,经国务院批准;公开日期2018-10-23 15:29", "date") == ["2013年12月", "2018-10-23 15:29"]


def test_person_after_a_role_and_before_a_verb_of_speech():
    assert spans("管委會副主任鍾元自豪的介紹發展成就", "person") == ["鍾元"]
    assert spans("据园区管委会副主任方圆介绍,今年", "person") == ["方圆"]


def test_enumeration_without_its_verb_and_trailing_count_phrase():
    text = "园区目前已经形成氟化工、有机硅、无机硅三大产业链和氟硅化工、精细化工、生物化工三个专业功能区"
    assert spans(text, "list") == ["氟化工、有机硅、无机硅", "氟硅化工、精细化工、生物化工"]


def test_several_amounts_together():
    assert spans("城乡居民收入分别为68309元和38044元。", "amounts") == ["68309元和38044元"]


def test_organisations():
    found = spans("鼓励龙盛、闰土进军新材料产业,康龙化成医药基地启动建设", "org")
    assert "康龙化成医药基地" in found
