"""Questions about measures and procedures (「有哪些措施」「如何办理」) are answered with the whole
clause or sentence that states them, not with one comma-delimited piece of it."""
import pytest

from qa.read.neural.reader import MAX_ANSWER_TOKENS, TransformersReader

POLICY = ("关于进一步优化营商环境的若干措施\n\n"
          "为进一步优化营商环境，市政府决定实施以下措施。对新设立的小微企业，三年内免收行政事业性收费，"
          "并由市财政按实际缴纳社会保险费的50%给予补贴。企业办理不动产登记，可通过“一网通办”平台在线提交申请，"
          "材料齐全的在3个工作日内办结。对年度纳税额超过1000万元的企业，给予一次性奖励20万元。\n\n"
          "本措施自2024年1月1日起施行，有效期三年。\n")


@pytest.fixture(scope="module")
def policy_pipeline(pipeline_over):
    return pipeline_over({"措施.txt": POLICY})


def test_the_reader_may_return_a_span_of_several_clauses():
    assert MAX_ANSWER_TOKENS >= 64            # ~100 Chinese characters: a whole measure
    assert TransformersReader().max_answer_tokens >= 64


def test_a_measures_question_gets_every_clause_of_the_measure(policy_pipeline, check_citations):
    a = policy_pipeline.answer("对新设立的小微企业有哪些扶持措施？")
    assert not a.no_answer
    assert "免收行政事业性收费" in a.text and "给予补贴" in a.text       # both measures, one span
    check_citations(a, policy_pipeline.index.documents)


def test_a_number_question_on_the_same_text_still_gets_the_number(policy_pipeline):
    assert policy_pipeline.answer("纳税额超过1000万元的企业能得到多少奖励？").text == "20万元"
