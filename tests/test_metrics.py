"""The scorer on worked examples whose numbers were computed by hand."""
from __future__ import annotations

import pytest

from qa.evaluation.metrics import (
    PRF, citation_correct, em, f1, hit_rank, mrr, no_answer_prf, normalize_answer, percentile,
    recall_at_k, score, tokenize,
)
from qa.types import Chunk

# ----------------------------------------------------------------- normalisation and tokens


@pytest.mark.parametrize("raw, expected", [
    ("“604.5億元”。", "604.5亿元"),            # quotes and full stop dropped, 億 → 亿
    ("６０４．５亿元", "604.5亿元"),             # full-width digits and point folded
    ("第九、第十位", "第九第十位"),              # 、 dropped
    ("朱银燕\u00a0倪贤方", "朱银燕倪贤方"),        # no-break space dropped
    ("(Hello, World!)", "helloworld"),          # ASCII punctuation and case
    ("增长16.7%。", "增长16.7%"),                # % kept, decimal point kept, 。 dropped
    ("超1/3", "超1/3"),                          # fraction slash kept between digits
    ("2013〜2017年", "2013-2017年"),             # any range mark between digits → "-"
    ("1,000元", "1000元"),                       # thousands separator dropped
    ("“1+9”政策体系", "1+9政策体系"),             # + is not punctuation
    ("。,;!", ""),
    ("", ""),
    (None, ""),
])
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("604.5亿元", ["604.5", "亿", "元"]),
    ("16.7%", ["16.7", "%"]),
    ("5G网络", ["5g", "网", "络"]),
    ("年产100万KW", ["年", "产", "100", "万", "kw"]),
    ("8000-10000人", ["8000-10000", "人"]),
    ("“1+5”", ["1", "+", "5"]),
    ("鍾元", ["钟", "元"]),
])
def test_tokenize_cjk_per_character_and_non_cjk_runs_whole(raw, expected):
    assert tokenize(raw) == expected


# ----------------------------------------------------------------- EM and F1


def test_em_ignores_punctuation_script_and_width():
    assert em("“42条”", "42条") == 1.0
    assert em("鍾元", "钟元") == 1.0                 # traditional = simplified
    assert em("杭州灣上虞經開區", "杭州湾上虞经开区") == 1.0
    assert em("ＰＶＤＦ", "pvdf") == 1.0
    assert em("604.5亿", "604.5亿元") == 0.0
    assert em("16.7", "16.7%") == 0.0


def test_f1_worked_examples():
    # 北 京 天 安 门 vs 北 京: lcs 2, P = 2/5, R = 2/2, F1 = 2·0.4·1 / 1.4 = 4/7
    assert f1("北京天安门", "北京") == pytest.approx(4 / 7)
    # [604.5, 亿] vs [604.5, 亿, 元]: lcs 2, P = 1, R = 2/3, F1 = 4/5
    assert f1("604.5亿", "604.5亿元") == pytest.approx(0.8)
    # the number is one token: 604 and 604.5 share nothing
    assert f1("604亿元", "604.5亿元") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))  # lcs = 亿元 → 2/3
    assert f1("604", "604.5") == 0.0
    # 1/3 stays one token: [超, 1/3] vs [1/3]: P = 1/2, R = 1, F1 = 2/3
    assert f1("超1/3", "1/3") == pytest.approx(2 / 3)


def test_f1_uses_the_longest_common_contiguous_run_not_a_subsequence():
    # 新 材 料 产 业 vs 新 型 材 料 产 业: the longest common *substring* is 材料产业 (4),
    # P = 4/5, R = 4/6, F1 = 2·(4/5)·(2/3) / (4/5 + 2/3) = 8/11.
    # (A subsequence LCS would give 5 and F1 = 10/11.)
    assert f1("新材料产业", "新型材料产业") == pytest.approx(8 / 11)


def test_f1_is_symmetric_in_its_arguments_and_punctuation_free():
    assert f1("“第九”,", "全省第九") == pytest.approx(f1("全省第九", "第九"))
    # [第, 九] vs [全, 省, 第, 九]: lcs 2, P = 1, R = 1/2, F1 = 2/3
    assert f1("“第九”,", "全省第九") == pytest.approx(2 / 3)


def test_f1_and_em_on_traditional_versus_simplified():
    assert f1("新材料和現代醫藥", "新材料和现代医药") == 1.0
    # 產業協同創新中心 vs 产业协同创新中心一期: 8 of 10 gold tokens, P = 1, R = 0.8, F1 = 8/9
    assert f1("產業協同創新中心", "产业协同创新中心一期") == pytest.approx(8 / 9)


def test_f1_and_em_of_empty_strings():
    assert f1("", "") == 1.0 and em("", "") == 1.0
    assert f1("", "钟元") == 0.0 and f1("钟元", "") == 0.0
    assert f1("。", "钟元") == 0.0                  # punctuation only = empty


# ----------------------------------------------------------------- score over acceptable answers


def test_score_takes_the_best_answer():
    golds = ["604.5亿元", "604.5亿", "400亿"]
    assert score("400亿", golds) == (1.0, 1.0)
    assert score("604.5亿元。", golds) == (1.0, 1.0)
    # best F1 comes from 604.5亿元: [604.5,亿,元] vs [604.5,亿,元,左,右]: P = 3/5, R = 1 → 3/4
    assert score("604.5亿元左右", golds) == (0.0, pytest.approx(0.75))


def test_score_partial_credit_comes_from_the_closest_answer():
    # the exact answer wins although the other scores 0
    assert score("第92位", ["第92位", "百强"]) == (1.0, 1.0)
    # no exact match: vs 第九 P = 2/4, R = 1 → 2/3; vs 第十 lcs 1, P = 1/4, R = 1/2 → 1/3
    e, f = score("全省第九", ["第九", "第十"])
    assert e == 0.0 and f == pytest.approx(2 / 3)


def test_score_accepts_answer_dicts_from_the_eval_set():
    golds = [{"text": "鍾元", "doc_id": "000_x.txt", "start": 1, "end": 3}]
    assert score("钟元", golds) == (1.0, 1.0)


def test_score_of_no_answer_questions_and_abstentions():
    assert score("", []) == (1.0, 1.0)          # correct abstention
    assert score(None, []) == (1.0, 1.0)
    assert score(" 。", []) == (1.0, 1.0)        # nothing but punctuation counts as abstaining
    assert score("1350亿", []) == (0.0, 0.0)    # answered an unanswerable question
    assert score("", ["1350億"]) == (0.0, 0.0)  # abstained on an answerable one
    assert score(None, ["1350億"]) == (0.0, 0.0)


# ----------------------------------------------------------------- retrieval

HITS = [("a.txt", 0, 100), ("b.txt", 0, 50), ("b.txt", 55, 120), ("b.txt", 40, 200)]
GOLD = [("b.txt", 60, 70)]


def test_recall_at_k_needs_a_passage_that_contains_the_gold_span():
    assert hit_rank(HITS, GOLD) == 3
    assert recall_at_k(HITS, GOLD, 1) == 0.0
    assert recall_at_k(HITS, GOLD, 2) == 0.0
    assert recall_at_k(HITS, GOLD, 3) == 1.0
    assert recall_at_k(HITS, GOLD, 10) == 1.0


def test_partial_overlap_or_another_document_is_not_a_hit():
    assert recall_at_k([("b.txt", 65, 120), ("b.txt", 0, 65)], GOLD, 2) == 0.0
    assert recall_at_k([("c.txt", 0, 1000)], GOLD, 1) == 0.0
    assert recall_at_k([("b.txt", 60, 70)], GOLD, 1) == 1.0   # exact boundaries count


def test_mrr_is_the_reciprocal_rank_of_the_first_hit():
    assert mrr(HITS, GOLD) == pytest.approx(1 / 3)
    assert mrr(HITS, GOLD, k=2) == 0.0
    assert mrr([], GOLD) == 0.0
    # any acceptable answer counts: the second gold span is inside the first hit
    assert mrr(HITS, GOLD + [("a.txt", 10, 20)]) == 1.0


def test_retrieval_metrics_accept_dicts_and_chunks():
    gold = [{"text": "x", "doc_id": "b.txt", "start": 60, "end": 70}]
    chunks = [Chunk(0, "b.txt", 0, 50, "…"), Chunk(1, "b.txt", 50, 100, "…")]
    assert mrr(chunks, gold) == 0.5
    assert recall_at_k(chunks, gold, 1) == 0.0


def test_retrieval_metrics_reject_undefined_cases():
    with pytest.raises(ValueError):
        recall_at_k(HITS, [], 5)
    with pytest.raises(ValueError):
        mrr(HITS, [])
    with pytest.raises(ValueError):
        recall_at_k(HITS, GOLD, 0)


# ----------------------------------------------------------------- citations


def test_citation_correct_needs_the_right_document_and_an_overlap():
    gold = [{"text": "604.5亿元", "doc_id": "001.txt", "start": 608, "end": 616}]
    assert citation_correct("001.txt", 600, 620, gold)       # covers it
    assert citation_correct("001.txt", 615, 640, gold)       # one character of overlap
    assert not citation_correct("001.txt", 616, 640, gold)   # half-open: touching is not overlapping
    assert not citation_correct("001.txt", 500, 608, gold)
    assert not citation_correct("004.txt", 600, 620, gold)   # same offsets, other document
    assert not citation_correct("001.txt", 600, 620, [])     # no-answer question
    assert citation_correct("004.txt", 630, 640, gold + [("004.txt", 637, 641)])


# ----------------------------------------------------------------- no-answer detection


def test_no_answer_prf_worked_example():
    pairs = [(True, True), (True, False), (False, True), (False, False), (True, True)]
    # tp = 2, fp = 1, fn = 1 → P = 2/3, R = 2/3, F1 = 2/3
    p, r, f = no_answer_prf(pairs)
    assert (p, r, f) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    # tp = 1, fp = 3, fn = 0 → P = 1/4, R = 1, F1 = 2·(1/4)/(5/4) = 2/5
    assert no_answer_prf([(True, True), (True, False), (True, False), (True, False)]) == \
        pytest.approx(PRF(0.25, 1.0, 0.4))


def test_no_answer_prf_zero_denominators():
    assert no_answer_prf([(False, False), (False, False)]) == (1.0, 1.0, 1.0)  # nothing to find, none claimed
    assert no_answer_prf([(False, True)]) == (0.0, 0.0, 0.0)                    # missed the only one
    assert no_answer_prf([(True, False)]) == (0.0, 0.0, 0.0)                    # claimed one that is not
    assert no_answer_prf([]) == (1.0, 1.0, 1.0)


# ----------------------------------------------------------------- percentiles


def test_percentile_interpolates_linearly():
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 0) == 1.0
    assert percentile([1, 2, 3, 4], 100) == 4.0
    # [10..50]: position (5 - 1)·0.9 = 3.6 → 40 + 0.6·10 = 46
    assert percentile([10, 20, 30, 40, 50], 90) == pytest.approx(46.0)
    assert percentile([7.5], 95) == 7.5


def test_percentile_matches_numpy():
    np = pytest.importorskip("numpy")
    values = [12.0, 3.5, 8.25, 40.0, 7.0, 7.0, 19.5]
    for p in (0, 5, 25, 50, 90, 95, 99, 100):
        assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1, 2], 101)
