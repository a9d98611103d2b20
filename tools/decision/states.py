"""The default reader's "answer" threshold: above it an answer, between it and the abstain
threshold 「可能是…」, below "not found".

``python -m tools.decision.states [--work DIR] [--precision 0.9] [--write]``

The combined reader (the default) has one calibrated cut, its abstain threshold; every span
above it used to be shown as an answer, a 0.41 one with the same badge as a 0.95 one. This
chooses a second, higher cut from the combined reader's own top candidates on the collected
public questions (``tools.decision.collect``: the fitting sets only, answerable, their own
unanswerables, retrieval unanswerables and near-miss years, each set and each half weighed as
``tools.decision.fit`` weighs them; a candidate is right when its F1 against a gold answer is
at least 0.8). Above the cut an answer is more likely right than wrong: a logistic fit of
"right" on the score (questions the reader answers at all) reaches ``--odds`` (0.5) there.
It also prints whether any cut reaches ``--precision`` (0.90) answered precision — the
combined score does not (at most ~74 %); the learned decision (``--reader decision``) is what
reaches it. The abstain threshold stays what it is, so which questions get an answer at all,
and every EM / F1 figure, do not change. The four validation sets are only measured.
``--write`` stores the cut in ``qa/read/combined-states.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from qa.decide.features import FEATURES
from qa.evaluation import metrics
from qa.paths import REPO
from qa.read.combined import STATES_FILE, CombinedReader
from tools.decision.fit import choose_thresholds, load_sets, platt, question_weights, weighted_pairs
from tools.decision.sets import CHECK_SETS, FIT_SETS, RANKER_ONLY

SCORE, TOP = FEATURES.index("combined_score"), FEATURES.index("combined_top")


def combined_tops(data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each question: the combined reader's best score (0 when it has no candidate),
    whether that candidate is right, whether the question is answerable, and its set."""
    n = len(data["answerable"])
    score, ok = np.zeros(n), np.zeros(n, dtype=bool)
    rows = np.flatnonzero(data["x"][:, TOP] > 0.5)
    for r in rows:
        g = data["group"][r]
        if data["x"][r, SCORE] >= score[g]:
            score[g], ok[g] = data["x"][r, SCORE], bool(data["y"][r])
    return score, ok, np.asarray(data["answerable"]), np.asarray(data["set"])


def state_table(score, ok, answerable, answer_at: float, abstain_at: float) -> dict:
    """Share of questions in each state, and how often each state is right (an answer or
    「可能是…」 right when its span is; "not found" right when the question is unanswerable)."""
    answer = score >= answer_at
    probable = (score >= abstain_at) & ~answer
    none = score < abstain_at
    out = {}
    for name, mask, right in (("answer", answer, ok), ("probable", probable, ok), ("not_found", none, ~answerable)):
        out[name] = {"share": round(float(mask.mean()), 3),
                     "right": round(float(right[mask].mean()), 3) if mask.any() else None}
    return out


def cell(state: dict) -> str:
    right = "–" if state["right"] is None else f"{100 * state['right']:.1f} %"
    return f"{100 * state['share']:.1f} % / {right}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.decision.states", description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("decision-work"))
    ap.add_argument("--precision", type=float, default=0.90, help="answered precision to look for (reported)")
    ap.add_argument("--odds", type=float, default=0.5, help="P(right) at the answer cut")
    ap.add_argument("--write", action="store_true", help=f"store the threshold in {STATES_FILE.relative_to(REPO)}")
    args = ap.parse_args(argv)
    abstain_at = CombinedReader().probable_threshold

    fit_sets = [s for s in FIT_SETS if s not in RANKER_ONLY]
    score, ok, answerable, sets = combined_tops(load_sets(args.work, fit_sets))
    weights = question_weights(sets, answerable)
    shown = score >= abstain_at
    slope, intercept = platt(score[shown], ok[shown], weights[shown])
    odds_at = (np.log(args.odds / (1 - args.odds)) - intercept) / slope
    answer_at = float(min(max(round(odds_at, 2), abstain_at), 0.99))
    pairs, unanswerable = weighted_pairs(score, ok, weights, extra=~answerable)
    precision, coverage = metrics.answered_precision(pairs, answer_at)
    target_at, _ = choose_thresholds(pairs, args.precision, unanswerable)
    best = max((metrics.answered_precision(pairs, t / 100)[0], t / 100) for t in range(40, 100))
    print(f"fitting sets {', '.join(fit_sets)}: {len(score)} questions "
          f"({int(answerable.sum())} answerable); abstain threshold {abstain_at:.3f}")
    print(f"P(right) = sigmoid({slope:.2f} x score {intercept:+.2f}) over the answered questions; "
          f"P = {args.odds} at {odds_at:.3f}")
    print(f"answer threshold {answer_at:.2f}: answered precision {100 * precision:.1f} % at coverage "
          f"{100 * coverage:.1f} % (weighted); at the abstain threshold: "
          f"{100 * metrics.answered_precision(pairs, abstain_at)[0]:.1f} % at "
          f"{100 * metrics.answered_precision(pairs, abstain_at)[1]:.1f} %")
    reached = metrics.answered_precision(pairs, target_at)[0] >= args.precision
    print(f"{100 * args.precision:.0f} % answered precision: "
          + (f"reached at {target_at:.2f}" if reached else
             f"reached at no cut (best {100 * best[0]:.1f} % at {best[1]:.2f})"))

    checks = {}
    print("\n| set (never fitted) | questions | answer: share / right | 「可能是…」: share / right | not found: share / right |")
    print("|---|---:|---:|---:|---:|")
    for name in CHECK_SETS:
        if not (args.work / "features" / f"{name}.npz").exists():
            continue
        s, k, a, _ = combined_tops(load_sets(args.work, [name]))
        t = state_table(s, k, a, answer_at, abstain_at)
        checks[name] = {"questions": len(s), **t}
        cells = [cell(t[x]) for x in ("answer", "probable", "not_found")]
        print(f"| {name} | {len(s)} | " + " | ".join(cells) + " |")

    if args.write:
        card = {"answer_threshold": round(answer_at, 2),
                "abstain_threshold": round(abstain_at, 4),
                "rule": f"P(right) >= {args.odds} (logistic fit of right on the score, answered questions)",
                "p_right": {"slope": round(slope, 4), "intercept": round(intercept, 4)},
                "precision_target": args.precision, "precision_target_reached": bool(reached),
                "best_precision": {"precision": round(best[0], 3), "at": best[1]},
                "fitting_precision": round(precision, 3), "fitting_coverage": round(coverage, 3),
                "fitted_on": fit_sets, "checked_on": checks,
                "command": "python -m tools.decision.collect --work W && python -m tools.decision.states --work W --write",
                "date": time.strftime("%Y-%m-%d")}
        STATES_FILE.write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {STATES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
