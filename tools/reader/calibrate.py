"""Calibrate the neural reader's no-answer threshold on public questions it never trained on.

``python -m tools.reader.calibrate --model DIR [--n 300] [--write]``

Held-out questions, none of them from a validation set or the seeds:
- answerable: ``--n`` questions of ``chinese_squad11_dev_zh_noXQuAD.json`` (translated SQuAD 1.1
  dev; not a training set of the reader);
- unanswerable: ``--n`` unanswerable questions of ``squad2_zh_dev.json`` that the training run
  left out (``--max-impossible`` kept the first 3,000 of its shuffled unanswerables).

Each is read on its gold paragraph (``TransformersReader.predict``); the score is
``sigmoid((span − null) / 2)``. For each threshold the mixed F1 counts an answerable question's
F1 when it answers (0 when it abstains) and 1 for an unanswerable one when it abstains. The
threshold is the middle of the range whose mixed F1 is within 0.5 of the best (a flat optimum:
the middle moves least on new text). ``--write`` stores it in the model's ``qa-reader.json``.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from qa.evaluation import metrics
from qa.evaluation.squad import load_squad
from qa.paths import READER_MODEL_DIR, REPO

DATA = REPO.parent / "shared" / "data"
ANSWERABLE = "chinese_squad11_dev_zh_noXQuAD.json"
UNANSWERABLE = "squad2_zh_dev.json"


def held_out(n: int, seed: int = 13, max_impossible: int = 3000) -> list[dict]:
    from tools.reader.train import TRAIN_FILES_V2, training_examples
    used = {e["id"] for e in training_examples(DATA, max_impossible, seed, None, TRAIN_FILES_V2)}
    rng = random.Random(0)
    ans = [q for q in load_squad(DATA / ANSWERABLE) if not q["impossible"] and q["id"] not in used]
    imp = [q for q in load_squad(DATA / UNANSWERABLE) if q["impossible"] and q["id"] not in used]
    return rng.sample(ans, min(n, len(ans))) + rng.sample(imp, min(n, len(imp)))


def calibrate(model_dir: Path, n: int) -> dict:
    from qa.read.neural.reader import TransformersReader
    reader = TransformersReader(model_dir)
    rows = []
    for q in held_out(n):
        (s, e, span, null), = reader.predict(q["question"], [q["context"]])
        f1 = 0.0 if q["impossible"] else metrics.score(q["context"][s:e], q["answers"])[1]
        rows.append((reader.score_of(span, null), q["impossible"], f1))
    grid = [round(0.02 * i, 2) for i in range(1, 50)]

    def mixed(t):
        return 100 * sum((1.0 if imp else 0.0) if sc < t else (0.0 if imp else f1) for sc, imp, f1 in rows) / len(rows)

    curve = {t: mixed(t) for t in grid}
    best = max(curve.values())
    flat = [t for t, v in curve.items() if v >= best - 0.5]
    threshold = round(flat[len(flat) // 2], 2)
    return {"threshold": threshold, "best_mixed_f1": round(best, 1), "flat_range": [flat[0], flat[-1]],
            "questions": {"answerable": sum(not r[1] for r in rows), "unanswerable": sum(r[1] for r in rows)},
            "sets": [f"{ANSWERABLE} (answerable, held out)", f"{UNANSWERABLE} (unanswerable, not used in training)"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.reader.calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=READER_MODEL_DIR)
    p.add_argument("--n", type=int, default=300, help="questions of each kind")
    p.add_argument("--write", action="store_true", help="store the threshold in the model's qa-reader.json")
    args = p.parse_args(argv)
    result = calibrate(args.model, args.n)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if args.write:
        meta_path = args.model / "qa-reader.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["threshold"] = result["threshold"]
        meta["threshold_calibration"] = result
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
