"""The answer-length cap, measured: the same logits decoded with several caps.

``python -m tools.reader.caps [--model DIR] [--caps 30,48,64,96] [--sets cail2019_dev:1200,...]``

For each validation set (the reader on each answerable question's gold paragraph, the first N
answerable questions), every window is run once and its best span decoded under each cap (at
most that many tokens); EM / F1 (CMRC 2018 scoring) overall and on the answers of at least
``--long`` characters (default 40: a measure, a procedure, a clause). Measuring only: nothing
here trains or tunes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qa.evaluation import metrics
from qa.evaluation.run import squad_documents
from qa.read.neural.reader import TransformersReader
from tools.reader.suite import DATA

DEFAULT_SETS = "cail2019_dev:1200,antiterror_dev:600,dureader_robust_dev:400,drcd_dev:400"


def measure(reader: TransformersReader, path: Path, limit: int, caps: list[int], long_chars: int) -> dict:
    docs, questions = squad_documents(path)
    text = {d.doc_id: d.text for d in docs}
    questions = [q for q in questions if not q["no_answer"]][:limit]
    rows = {c: [] for c in caps}
    for q in questions:
        ctx = text[q["doc_id"]]
        enc, sl, el = reader._run([q["question"]], [ctx])
        is_long = max(len(a["text"]) for a in q["answers"]) >= long_chars
        for c in caps:
            (s, e, _, _), = reader.best_spans([ctx], enc, sl, el, c)
            em, f1 = metrics.score(ctx[s:e], q["answers"])
            rows[c].append((em, f1, is_long))
    out = {}
    for c, r in rows.items():
        lo = [x for x in r if x[2]]
        out[c] = {"n": len(r), "em": 100 * sum(x[0] for x in r) / max(1, len(r)),
                  "f1": 100 * sum(x[1] for x in r) / max(1, len(r)), "n_long": len(lo),
                  "em_long": 100 * sum(x[0] for x in lo) / max(1, len(lo)),
                  "f1_long": 100 * sum(x[1] for x in lo) / max(1, len(lo))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.reader.caps", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="", help="exported reader directory (default: the shipped one)")
    p.add_argument("--caps", default="30,48,64,96")
    p.add_argument("--sets", default=DEFAULT_SETS, help="NAME:N,... (first N answerable questions)")
    p.add_argument("--long", type=int, default=40, help="characters from which an answer counts as long")
    args = p.parse_args(argv)
    reader = TransformersReader(args.model)
    caps = [int(c) for c in args.caps.split(",")]
    print("| set | cap | EM | F1 | long answers | EM long | F1 long |\n|---|---:|---:|---:|---:|---:|---:|")
    for item in args.sets.split(","):
        name, _, n = item.partition(":")
        for c, r in measure(reader, DATA / f"{name}.json", int(n or 1000), caps, args.long).items():
            print(f"| {name} ({r['n']}) | {c} | {r['em']:.1f} | {r['f1']:.1f} | {r['n_long']} | "
                  f"{r['em_long']:.1f} | {r['f1_long']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
