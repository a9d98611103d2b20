"""How the shipped answer decision does on public questions it was not fitted on.

``python -m tools.decision.report [--work DIR] [--out docs/decision]``

For each collected set (``tools.decision.collect``) — the four validation sets, and the
fitting sets' held-out 30% — every question's pool is scored by the shipped model
(``qa/decide/model/answer-decision.json``); the best candidate's probability is what the
product states. Printed and written (``OUT/report.md`` with one reliability diagram per
set): ECE, the share of answers right at the answer threshold and what it costs in
coverage, how many unanswerable questions still get an answer, the right-answer rate of
the best candidate against the neural reader's own best span, and no-answer F1 (a
「可能是…」 counts as an answer).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from qa.decide import AnswerDecision
from qa.decide.features import FEATURES
from qa.evaluation import metrics
from qa.evaluation.report import reliability_svg
from tools.decision.fit import load_sets, pools
from tools.decision.sets import ALL_SETS, CHECK_SETS, FIT_SETS


def summarize(model: AnswerDecision, data: dict, groups: np.ndarray | None = None) -> dict:
    diff = data["x"][:, FEATURES.index("neural_diff")]
    n_groups = len(data["answerable"])
    best_p = np.full(n_groups, 0.0)
    best_ok = np.zeros(n_groups, dtype=bool)
    neural_ok = np.zeros(n_groups, dtype=bool)
    for g, rs in pools(data, np.arange(len(data["y"]))).items():
        p = model.pool_probabilities(data["x"][rs].astype(np.float64), [str(t) for t in data["text"][rs]])
        i = int(np.argmax(p))
        best_p[g], best_ok[g] = p[i], bool(data["y"][rs[i]])
        neural_ok[g] = bool(data["y"][rs[int(np.argmax(diff[rs]))]])
    keep = np.arange(n_groups) if groups is None else groups
    ans = data["answerable"][keep]
    p, ok = best_p[keep], best_ok[keep]
    variants = _variants(data)[keep]
    pairs = list(zip(p.tolist(), ok.tolist()))
    bins, ece = metrics.calibration(pairs)
    prec, cov = metrics.answered_precision(pairs, model.answer_threshold)
    state = np.where(p >= model.answer_threshold, "answer", np.where(p >= model.probable_threshold, "probable", "none"))
    prf = metrics.no_answer_prf(zip((state == "none").tolist(), (~ans).tolist()))
    out = {
        "questions": int(len(keep)), "answerable": int(ans.sum()),
        "unanswerable (own)": int(((~ans) & (variants == "asked")).sum()),
        "unanswerable (gold removed)": int((variants == "removed").sum()),
        "unanswerable (year shifted)": int((variants == "year").sum()),
        "ece": round(ece, 4),
        "answered precision": round(100 * prec, 1), "coverage": round(100 * cov, 1),
        "answerable answered": round(100 * float(np.mean(state[ans] == "answer")), 1) if ans.any() else None,
        "answerable right (best candidate)": round(100 * float(ok[ans].mean()), 1) if ans.any() else None,
        "answerable right (neural best)": round(100 * float(neural_ok[keep][ans].mean()), 1) if ans.any() else None,
        "unanswerable answered": round(100 * float(np.mean(state[~ans] == "answer")), 1) if (~ans).any() else None,
        "unanswerable probable": round(100 * float(np.mean(state[~ans] == "probable")), 1) if (~ans).any() else None,
        "probable right": round(100 * float(ok[state == "probable"].mean()), 1) if (state == "probable").any() else None,
        "noans F1": round(100 * prf.f1, 1),
    }
    return {"summary": out, "bins": bins, "ece": ece}


def _variants(data: dict) -> np.ndarray:
    out = np.array(["asked"] * len(data["answerable"]), dtype=object)
    for r in range(len(data["group"])):
        out[data["group"][r]] = data["variant"][r]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.decision.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("decision-work"))
    p.add_argument("--out", type=Path, default=Path("docs/decision"))
    args = p.parse_args(argv)
    model = AnswerDecision.load()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    fit = load_sets(args.work, FIT_SETS)
    rng = np.random.default_rng(13)                 # the same held-out split as tools.decision.fit
    qids = sorted(set(fit["qid"]))
    held = set(rng.choice(qids, int(0.3 * len(qids)), replace=False))
    held_groups = np.array([g for g, q in enumerate(fit["qid"]) if q in held])
    results["fitting sets, held-out 30%"] = summarize(model, fit, held_groups)
    for name in CHECK_SETS:
        if (args.work / "features" / f"{name}.npz").exists():
            results[f"{name} ({ALL_SETS[name][0]})"] = summarize(model, load_sets(args.work, [name]))
    lines = ["# Answer decision: calibration on public questions it was not fitted on\n",
             f"Model: `qa/decide/model/answer-decision.json`; answer threshold {model.answer_threshold}, "
             f"「可能是…」 threshold {model.probable_threshold}.\n",
             "Each question is asked against its whole collection (retrieval, then the reader). "
             "Unanswerables: the set's own, and answerable questions asked with their gold paragraph "
             "removed from the collection.\n"]
    keys = list(next(iter(results.values()))["summary"])
    lines.append("| set | " + " | ".join(keys) + " |")
    lines.append("|---|" + "---:|" * len(keys))
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join("" if r["summary"][k] is None else str(r["summary"][k]) for k in keys) + " |")
    lines.append("")
    for i, (name, r) in enumerate(results.items()):
        svg = f"reliability-{i}.svg"
        (args.out / svg).write_text(reliability_svg(r["bins"], name.split(" (")[0], r["ece"]), encoding="utf-8")
        lines.append(f"![reliability: {name}]({svg})")
    (args.out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(json.dumps({k: v["summary"] for k, v in results.items()}, ensure_ascii=False, indent=1))
    print(f"wrote {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
