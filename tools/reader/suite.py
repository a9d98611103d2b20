"""The reader's validation suite: one table, every validation set, models side by side.

``python -m tools.reader.suite [--model DIR ...] [--limit N] [--max-answer N] [--modes by_kind,neural]
[--json FILE] [--no-open]``

For each model directory (default: the shipped ``qa/read/neural/model``), and each set:

- ``drcd_dev``, ``antiterror_dev``, ``cail2019_dev``, ``dureader_robust_dev`` (from
  ``../shared/data``): the neural reader on the gold paragraph
  (``TransformersReader.predict``: 256-token windows, stride 128), CMRC 2018 scoring on
  text; EM / F1 never abstaining, and where the set has unanswerable questions also
  EM / F1 with the model's own threshold and no-answer F1;
- ``seeds``: the seed evaluation set through the pipeline (hybrid retrieval), the neural
  reader alone (answerable EM / F1, top span) and the combined reader in each of ``--modes``
  (EM, F1, no-answer F1);
- ``drcd_dev open``: DRCD dev with retrieval over all its paragraphs, the combined reader in
  each of ``--modes``.

``--whole drcd_dev``: score that gold set on all its questions whatever ``--limit`` says (the
first 1,000 of DRCD dev are harder than the rest: 62.5 vs 66.4 EM for the same model).

``--max-answer N``: the longest span the neural reader may return, in tokens (default: the
reader's own). Results are cached in ``--cache`` by model, set, limit, setting and a fingerprint of
``qa/``'s code, so a second
model or a new setting only computes what is new.

These sets are for measuring only: nothing here trains or tunes. ``--limit N`` takes the
first N questions of each SQuAD-format set (the same questions for every model).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from qa.evaluation import metrics
from qa.evaluation.run import squad_documents
from qa.paths import READER_MODEL_DIR, REPO

DATA = REPO.parent / "shared" / "data"
GOLD_SETS = ("drcd_dev", "antiterror_dev", "cail2019_dev", "dureader_robust_dev")


def gold_paragraph(reader, path: Path, limit: int | None) -> dict:
    """The reader alone on each question's own paragraph."""
    docs, questions = squad_documents(path)
    text = {d.doc_id: d.text for d in docs}
    if limit:
        questions = questions[:limit]
    rows = []
    t0 = time.perf_counter()
    for q in questions:
        (s, e, span, null), = reader.predict(q["question"], [text[q["doc_id"]]])
        pred = text[q["doc_id"]][s:e]
        abstains = reader.score_of(span, null) < reader.threshold
        rows.append((pred, abstains, q["answers"], q["no_answer"]))
    out = {"n": len(rows), "seconds": time.perf_counter() - t0}
    answerable = [r for r in rows if not r[3]]
    scores = [metrics.score(p, g) for p, _, g, _ in answerable]
    out["em"] = 100 * sum(s[0] for s in scores) / max(len(scores), 1)
    out["f1"] = 100 * sum(s[1] for s in scores) / max(len(scores), 1)
    if any(r[3] for r in rows):
        scored = [metrics.score("" if a else p, [] if no else g) for p, a, g, no in rows]
        out["em_abstain"] = 100 * sum(s[0] for s in scored) / len(scored)
        out["f1_abstain"] = 100 * sum(s[1] for s in scored) / len(scored)
        out["noans_f1"] = 100 * metrics.no_answer_prf((a, no) for _, a, _, no in rows).f1
    return out


def _readers(neural, modes):
    from qa.read.combined import CombinedReader
    out = {"transformers": neural}
    out.update({f"combined {m}": CombinedReader(neural=neural, mode=m) for m in modes})
    return out


def seed_set(neural, modes) -> dict:
    """The seed evaluation set through the pipeline: the neural reader alone and the combined modes."""
    from qa.evaluation.run import EVAL_SET, evaluate, load_eval_set
    from qa.pipeline import Pipeline
    questions = load_eval_set(EVAL_SET)
    out = {}
    base = None
    for name, reader in _readers(neural, modes).items():
        pipe = Pipeline.load(reader=reader) if base is None else Pipeline(base.index, base.encoder, "hybrid", reader,
                                                                             base.index_dir)
        base = base or pipe
        m = evaluate(pipe, questions, name, abstain=(name != "transformers")).metrics()
        out[name] = {k: m[k] for k in ("answerable_em", "answerable_f1", "em", "f1", "noans_f1") if k in m}
    return out


def drcd_open(neural, modes, limit: int | None) -> dict:
    from embeddings.encoders import get_encoder
    from qa.evaluation.run import evaluate, squad_index
    from qa.pipeline import Pipeline
    path = DATA / "drcd_dev.json"
    _, questions = squad_documents(path)
    if limit:
        questions = questions[:limit]
    out = {}
    base = None
    for name, reader in _readers(neural, modes).items():
        if name == "transformers":
            continue
        pipe = Pipeline.load(squad_index(path, get_encoder()), reader=reader) if base is None else \
            Pipeline(base.index, base.encoder, "hybrid", reader, base.index_dir)
        base = base or pipe
        m = evaluate(pipe, questions, "drcd open", abstain=False).metrics()
        out[name] = {k: m[k] for k in ("n", "em", "f1", "recall@5")}
    return out


def code_version() -> str:
    """A fingerprint of the product's code (``qa/``): a cached result computed by other code is
    not reused."""
    h = hashlib.sha1()
    for path in sorted((REPO / "qa").rglob("*.py")):
        h.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def run_model(model_dir: Path, limit: int | None, open_setting: bool, max_answer: int | None, modes: list[str],
              cache: dict, log, parts: tuple[str, ...] = ("gold", "seeds", "open"),
              whole: tuple[str, ...] = ()) -> dict:
    from qa.read.neural.reader import TransformersReader
    kwargs = {"max_answer_tokens": max_answer} if max_answer else {}
    reader = TransformersReader(model_dir, **kwargs)
    tag = f"{Path(model_dir).resolve()}|limit={limit}|max_answer={reader.max_answer_tokens}|code={code_version()}"
    result = {"model": str(model_dir), "threshold": reader.threshold, "max_answer": reader.max_answer_tokens}

    def cached(key, compute):
        k = f"{tag}|{key}"
        if k not in cache:
            cache[k] = compute()
        return cache[k]

    for name in GOLD_SETS if "gold" in parts else ():
        path = DATA / f"{name}.json"
        if not path.exists():
            log(f"  {name}: missing ({path}), skipped")
            continue
        if name in whole:
            result[name] = cached(f"{name}|all", lambda: gold_paragraph(reader, path, None))
        else:
            result[name] = cached(name, lambda: gold_paragraph(reader, path, limit))
        log(f"  {name}: {json.dumps(result[name])}")
    if "seeds" in parts:
        result["seeds"] = cached(f"seeds|{','.join(modes)}", lambda: seed_set(reader, modes))
        log(f"  seeds: {json.dumps(result['seeds'])}")
    if open_setting and "open" in parts and (DATA / "drcd_dev.json").exists():
        result["drcd_dev_open"] = cached(f"open|{','.join(modes)}", lambda: drcd_open(reader, modes, limit))
        log(f"  drcd_dev open: {json.dumps(result['drcd_dev_open'])}")
    return result


def table(results: list[dict]) -> str:
    """One Markdown table: a row per set and measure, a column per model."""
    rows = []
    for name in GOLD_SETS:
        for key, label in (("em", "EM"), ("f1", "F1"), ("em_abstain", "EM, abstaining"),
                           ("f1_abstain", "F1, abstaining"), ("noans_f1", "no-answer F1")):
            if any(key in r.get(name, {}) for r in results):
                n = next(r[name]["n"] for r in results if name in r)
                rows.append((f"{name} (gold paragraph, {n} q) {label}", [r.get(name, {}).get(key) for r in results]))
    kinds = list(dict.fromkeys(k for r in results for k in r.get("seeds", {})))
    for kind in kinds:
        label = "neural alone" if kind == "transformers" else kind
        for key in ("answerable_em", "answerable_f1", "em", "noans_f1"):
            if any(key in r.get("seeds", {}).get(kind, {}) for r in results):
                rows.append((f"seeds, {label}, {key.replace('_', ' ')}",
                             [r.get("seeds", {}).get(kind, {}).get(key) for r in results]))
    kinds = list(dict.fromkeys(k for r in results for k in r.get("drcd_dev_open", {})))
    for kind in kinds:
        for key in ("em", "f1"):
            n = next(r["drcd_dev_open"][kind]["n"] for r in results if kind in r.get("drcd_dev_open", {}))
            rows.append((f"drcd_dev open ({n} q), {kind}, {key.upper()}",
                         [r.get("drcd_dev_open", {}).get(kind, {}).get(key) for r in results]))
    head = "| set / measure | " + " | ".join(f"{Path(r['model']).name} (max {r['max_answer']})" for r in results) + " |"
    lines = [head, "|---|" + "---:|" * len(results)]
    for label, vals in rows:
        lines.append(f"| {label} | " + " | ".join("" if v is None else f"{v:.1f}" for v in vals) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.reader.suite", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, action="append", help="exported reader directory (repeat to compare)")
    p.add_argument("--limit", type=int, default=None, help="first N questions of each SQuAD-format set")
    p.add_argument("--no-open", action="store_true", help="skip the open setting over DRCD dev")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--max-answer", type=int, action="append", default=None,
                   help="longest neural span in tokens (repeat to compare; default the reader's own)")
    p.add_argument("--modes", default="by_kind,neural", help="combined reader modes to score")
    p.add_argument("--cache", type=Path, default=Path("suite-cache.json"), help="results computed so far")
    p.add_argument("--whole", default="",
                   help="gold sets scored on all their questions whatever --limit says (e.g. drcd_dev)")
    p.add_argument("--parts", default="gold,seeds,open",
                   help="which parts to run: gold (the four sets on their paragraphs), seeds, open")
    args = p.parse_args(argv)
    models = args.model or [READER_MODEL_DIR]
    modes = [m for m in args.modes.split(",") if m]
    cache = json.loads(args.cache.read_text(encoding="utf-8")) if args.cache.exists() else {}

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    results = []
    for m in models:
        for max_answer in args.max_answer or [None]:
            log(f"model {m} (max answer {max_answer or 'default'})")
            try:
                results.append(run_model(m, args.limit, not args.no_open, max_answer, modes, cache, log,
                                         tuple(args.parts.split(",")), tuple(n for n in args.whole.split(",") if n)))
            finally:
                args.cache.write_text(json.dumps(cache, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
