import pytest

from qa.question import analyze_question


@pytest.mark.parametrize("question, kind", [
    ("新材料产业产值是多少", "amount"),
    ("2017年工业产值增长多少", "percent"),
    ("经开区落户企业有多少家", "count"),
    ("經開區在全國國家級開發區中排名第幾", "rank"),
    ("衢州高新区什么时候升级为国家级", "date"),
    ("哪一年实现了整合", "date"),
    ("谁是管委会副主任", "person"),
    ("三大产业链是什么", "list"),
    ("园区有哪些人才平台", "list"),
    ("龙盛研究院在哪里", "place"),
    ("这个平台叫什么名字", "entity"),
])
def test_question_kind(question, kind):
    assert analyze_question(question).kind == kind


def test_question_terms_drop_question_words_and_keep_years():
    info = analyze_question("上虞区2020年的常住人口是多少?")
    assert "常住人口" in info.terms and "2020" in info.terms
    assert info.years == ["2020"]
    assert "人口" in info.focus


def test_measure_word_and_plural():
    assert analyze_question("有多少家公司入驻了经开区").unit == "家"
    assert analyze_question("城乡居民收入分别是多少").plural


def test_how_much_money_is_not_how_many_people():
    for q in ("被告人向李某索要多少人民币?", "这台设备多少钱"):
        info = analyze_question(q)
        assert (info.kind, info.unit) == ("amount", "元"), q
    assert (analyze_question("公司有多少人").unit, analyze_question("游客有多少人次").unit) == ("人", "人")


def test_traditional_question_is_analysed_in_simplified_form():
    info = analyze_question("經濟總量是多少")
    assert info.script == "traditional"
    assert info.normalized == "经济总量是多少"
