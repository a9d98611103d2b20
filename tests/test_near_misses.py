"""Near-miss questions: the document gives a figure for another year, a place it does not
cover, a figure that measures something else, or names the holder of another role. The answer is "not found" — naming the nearest text — not that other figure or
person; the questions the document does answer keep their answers."""
import pytest

from qa.question import head_dimension, make_question, named_places
from qa.read.candidates import (asked_roles, dimension_conflict, figure_absent, measure_conflict, place_absent,
                                 role_conflict, year_evidence)
from qa.text.normalize import normalize

REPORT = ("赤峰实验室2025年工作报告\n\n"
          "2025年，赤峰实验室共获得发明专利授权43项，比上年增加9项。实验室现有科研人员260人，其中博士120人。"
          "董事长王建华表示，实验室将继续加大研发投入。\n\n"
          "2025年实验室研发投入达到1.8亿元，同比增长15%。\n")


@pytest.fixture(scope="module")
def report_pipeline(pipeline_over):
    return pipeline_over({"报告.txt": REPORT})


def test_a_year_the_sentence_names_matches_and_another_year_conflicts():
    norm = normalize(REPORT)
    s = norm.index("2025年,赤峰")        # the normaliser folds ， to ,
    e = norm.index("。", s) + 1
    assert year_evidence(["2025"], norm, s, e) == (True, False)
    assert year_evidence(["2024"], norm, s, e) == (False, True)
    assert year_evidence([], norm, s, e) == (False, False)


def test_a_role_the_text_does_not_name_conflicts_only_before_another_roles_holder():
    norm = normalize(REPORT)
    s = norm.index("董事长王建华"); e = norm.index("。", s) + 1
    name = norm.index("王建华")
    assert role_conflict(asked_roles("实验室的总经理是谁"), norm, s, e, name)
    assert not role_conflict(asked_roles("实验室的董事长是谁"), norm, s, e, name)
    assert not role_conflict(asked_roles("谁表示将继续加大研发投入"), norm, s, e, name)
    deputy = normalize("管委会副主任方圆介绍，园区今年新引进项目12个。")
    assert role_conflict(asked_roles("管委会主任是谁"), deputy, 0, len(deputy), deputy.index("方圆"))
    assert not role_conflict(asked_roles("管委会副主任是谁"), deputy, 0, len(deputy), deputy.index("方圆"))


def test_the_asked_year_is_answered(report_pipeline):
    a = report_pipeline.answer("赤峰实验室2025年获得多少项专利")
    assert not a.no_answer and a.text == "43项"


def test_another_year_is_not_found_but_the_nearest_figure_is_named(report_pipeline):
    a = report_pipeline.answer("赤峰实验室2024年获得多少项专利")
    assert a.no_answer and a.state == "not_found"
    assert "43项" in [alt.text for alt in a.alternatives]


def test_the_asked_role_is_answered_and_another_role_is_not_found(report_pipeline):
    assert report_pipeline.answer("赤峰实验室的董事长是谁").text == "王建华"
    assert report_pipeline.answer("赤峰实验室的总经理是谁").no_answer


def test_a_count_of_other_things_is_not_the_answer(report_pipeline):
    assert measure_conflict("所", "3.7万人") and not measure_conflict("名", "3600人")
    assert not measure_conflict("个", "3人")              # 个 counts anything
    assert report_pipeline.answer("赤峰实验室有多少名科研人员").text == "260人"
    a = report_pipeline.answer("赤峰实验室有多少所学校")
    assert a.no_answer, a.text


STATION = ("五羊邨站\n\n五羊邨站共有4个出入口和2个站厅。五羊邨站为地下三层车站。\n")


def test_the_neural_reader_leads_over_a_typed_number_it_supports_less(pipeline_over):
    """The neural reader answers 三层 (a count the typed patterns do not know) by its own
    threshold; the typed 4个 (another thing) is supported only by a weaker neural span."""
    a = pipeline_over({"五羊邨站.txt": STATION}).answer("五羊邨站共有几层？")
    assert not a.no_answer and a.text == "三层", a.text


def test_the_head_noun_says_what_the_figure_measures():
    assert head_dimension("上虞区2020年的常住人口是多少") == "people"
    assert head_dimension("新材料产业产值是多少") == "money"
    assert head_dimension("新建厂房的建筑面积是多少") == "area"
    assert head_dimension("研发人员占员工总数的比例是多少") == "ratio"   # a share: a percentage
    assert head_dimension("上虞区2020年的城镇化率是多少") == "ratio"
    assert head_dimension("地区生产总值增长了百分之几") == "ratio"
    assert head_dimension("美元的汇率是多少") == ""                      # a rate in 元, not a share
    assert head_dimension("创业园占地多大") == "area"                    # the noun before 多大
    assert head_dimension("经开区的经济总量有多大") == "money"
    assert head_dimension("新材料产业实现了多少利润") == "money"         # the noun after 多少
    assert head_dimension("原子球塔共有几个直径18米的球体") == ""         # 直径 describes what is counted


def test_a_figure_of_another_dimension_conflicts():
    assert dimension_conflict("people", "64亿元左右")          # asked how many live there, told a sum
    assert dimension_conflict("money", "3.7万人")
    assert dimension_conflict("money", "12%")                  # a tax is not a percentage share
    assert not dimension_conflict("money", "12%", "percent")  # 「占国内生产总值的多少」 asks for a share
    assert not dimension_conflict("people", "3.7万人")
    assert not dimension_conflict("people", "3.7万")           # no unit: nothing to contradict
    assert not dimension_conflict("area", "8.6万平方米")
    assert dimension_conflict("ratio", "64亿元左右")           # 城镇化率 is not a sum
    assert not dimension_conflict("ratio", "72.5%")
    assert dimension_conflict("area", "65个", "amount")        # 占地多大: things counted are no area
    assert dimension_conflict("money", "40余家", "amount")
    assert not dimension_conflict("money", "40余家", "count")   # a count question may count firms


def test_a_question_for_a_figure_is_not_answered_without_one():
    assert make_question("钟元是哪一年开始担任管委会副主任的").figure == "year"
    assert make_question("产业协同创新中心的总投资是多少").figure == "number"
    assert make_question("“店小二”多久要去企业一趟").figure == "duration"
    assert make_question("分为哪几个种类").figure == ""                  # 哪几 asks for the things
    assert figure_absent("year", "杭州湾上虞")
    assert not figure_absent("year", "2019年") and not figure_absent("year", "光绪三十年")
    assert figure_absent("number", "面积")
    assert not figure_absent("number", "约12亿元") and not figure_absent("number", "数百万")
    assert not figure_absent("number", "浙g×××××")                     # a plate number
    assert figure_absent("duration", "1800多次") and not figure_absent("duration", "每月至少一次")
    assert not figure_absent("", "面积")


def test_places_the_question_names():
    assert named_places("宁海县2020年的海鲜产值是多少") == ["宁海"]
    assert named_places("浙江省宁波市宁海县的人口有多少") == ["浙江", "宁波", "宁海"]
    assert named_places("哪个城市的面积最大") == []                    # 城市 is a word, not a place
    assert named_places("全市有多少家企业") == []
    assert named_places("该镇距离县城多远") == []
    assert place_absent(["宁海"], normalize(REPORT.replace("赤峰", "上虞")))
    assert not place_absent(["赤峰"], normalize(REPORT))


def test_a_place_the_document_does_not_name_is_not_found(report_pipeline):
    assert make_question("宁海县实验室2025年获得多少项专利").places == ["宁海"]
    a = report_pipeline.answer("宁海县实验室2025年获得多少项专利")
    assert a.no_answer and "43项" in [alt.text for alt in a.alternatives]
    assert report_pipeline.answer("赤峰市实验室2025年获得多少项专利").text == "43项"


ZONE = ("杭州湾经开区工作报告\n\n杭州湾上虞经开区管委会副主任钟元介绍，经开区今年新引进项目40余家，"
        "产业协同创新中心总建筑面积约12万平方米。园区城镇化水平不断提高，地区生产总值增长较快。\n")


def test_a_figure_of_another_kind_is_not_the_answer(pipeline_over):
    """Asked how large the economy is, the text gives only a floor area and a count of projects:
    not found (before: 「可能是：12万平方米」)."""
    zone = pipeline_over({"报告.txt": ZONE})
    a = zone.answer("经开区的经济总量有多大")
    assert a.no_answer, a.text
    assert "12万平方米" in zone.answer("产业协同创新中心的建筑面积有多大").text
    for question in ("钟元是哪一年开始担任管委会副主任的", "经开区的城镇化率是多少"):
        assert zone.answer(question).no_answer, question


def test_a_sum_of_money_does_not_answer_how_many_people(report_pipeline):
    assert report_pipeline.answer("赤峰实验室的研发投入是多少").text == "1.8亿元"
    a = report_pipeline.answer("赤峰实验室的常住人口是多少")
    assert a.no_answer, a.text
