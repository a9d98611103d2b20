"""The neural reader in fp32 and in int8, answer by answer: does the int8 graph move the spans?

``python -m tools.reader.precision [--limit 300] [--precisions fp32,int8] [--json FILE]``

Runs the same reader (``TransformersReader(backend="onnx", precision=P)``) over:

- ``drcd_dev`` (``../shared/data``), the first ``--limit`` questions on their gold paragraph
  (``predict``, as ``tools.reader.suite`` does), EM / F1 never abstaining;
- the seed evaluation set through the pipeline (hybrid retrieval): the neural reader alone
  (top span) and the combined reader (the default answer path, abstaining);

and prints EM / F1 of each precision and the share of questions whose top span (answer text,
and for the seed set the cited offset) is identical to the first precision's. Nothing is timed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qa.evaluation import metrics
from qa.paths import REPO

DRCD_DEV = REPO.parent / "shared" / "data" / "drcd_dev.json"


def drcd_gold(reader, path: Path, limit: int | None) -> tuple[dict, list]:
    from qa.evaluation.run import squad_documents
    docs, questions = squad_documents(path)
    text = {d.doc_id: d.text for d in docs}
    questions = questions[:limit] if limit else questions
    preds = []
    for q in questions:
        (s, e, _, _), = reader.predict(q["question"], [text[q["doc_id"]]])
        preds.append(text[q["doc_id"]][s:e])
    scores = [metrics.score(p, q["answers"]) for p, q in zip(preds, questions)]
    return ({"n": len(scores), "em": 100 * sum(s[0] for s in scores) / len(scores),
             "f1": 100 * sum(s[1] for s in scores) / len(scores)}, preds)


def seed_set(reader) -> dict[str, tuple[dict, list]]:
    from qa.evaluation.run import EVAL_SET, evaluate, load_eval_set
    from qa.pipeline import Pipeline
    from qa.read.combined import CombinedReader
    questions = load_eval_set(EVAL_SET)
    base = Pipeline.load(reader=reader)
    out = {}
    for name, r, abstain in (("neural alone", reader, False), ("combined", CombinedReader(neural=reader), True)):
        pipe = Pipeline(base.index, base.encoder, "hybrid", r, base.index_dir)
        summary = evaluate(pipe, questions, name, abstain=abstain)
        m = summary.metrics()
        out[name] = ({k: m[k] for k in ("n", "em", "f1", "answerable_em", "answerable_f1", "noans_f1") if k in m},
                     [[o.prediction, (o.cited or {}).get("start")] for o in summary.outcomes])
    return out


def same_share(a: list, b: list) -> float:
    return 100 * sum(x == y for x, y in zip(a, b)) / max(len(a), 1)


def table(results: dict[str, dict]) -> str:
    """Rows: set × measure; columns: precisions (the first is the reference for "same top span")."""
    names = list(results)
    ref = results[names[0]]
    lines = ["| set / measure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for part in ref:
        n = ref[part]["metrics"].get("n")
        for key in ("em", "f1", "answerable_em", "answerable_f1", "noans_f1"):
            if key in ref[part]["metrics"]:
                vals = [f"{results[p][part]['metrics'][key]:.2f}" for p in names]
                lines.append(f"| {part} ({n} q) {key.replace('_', ' ')} | " + " | ".join(vals) + " |")
        vals = [f"{same_share(results[p][part]['top'], ref[part]['top']):.1f} %" for p in names]
        lines.append(f"| {part}: same top span as {names[0]} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.reader.precision", description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=300, help="first N DRCD dev questions (default 300)")
    p.add_argument("--precisions", default="fp32,int8", help="comma-separated; the first is the reference")
    p.add_argument("--drcd", type=Path, default=DRCD_DEV)
    p.add_argument("--json", type=Path, default=None, help="also write metrics and top spans here")
    args = p.parse_args(argv)
    from qa.read.neural.reader import TransformersReader
    results: dict[str, dict] = {}
    for precision in [x.strip() for x in args.precisions.split(",") if x.strip()]:
        reader = TransformersReader(backend="onnx", precision=precision)
        if reader.model.precision != precision:
            print(f"{precision}: {reader.model.fallback}", file=sys.stderr)
            return 1
        print(f"{precision}: {reader.model.model_path}", file=sys.stderr, flush=True)
        res = {}
        if args.drcd.exists():
            m, top = drcd_gold(reader, args.drcd, args.limit)
            res["drcd_dev gold paragraph"] = {"metrics": m, "top": top}
        for part, (m, top) in seed_set(reader).items():
            res[f"seeds, {part}"] = {"metrics": m, "top": top}
        results[precision] = res
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
