"""Collect candidate features and labels for the answer decision, on public questions.

``python -m tools.decision.collect [--sets NAME ...] [--work DIR] [--limit N]``

For each set (``tools.decision.sets``) its collection is indexed once, and every question
is asked against the whole collection the way a user asks — retrieval, then the combined
reader's candidate pool (no decision) — in up to three variants:

- ``asked``: the question as written (answerable, or the set's own unanswerable);
- ``removed``: an answerable question asked with its gold paragraph taken out of the
  collection (its passages dropped from the retrieved list): a *retrieval unanswerable*,
  exactly how a question about something the user's documents do not hold looks;
- ``year`` (fitting sets only): a question naming a year its paragraph states, asked about
  a year the paragraph does not mention — a near-miss unanswerable.

A candidate is labelled correct by ``qa.evaluation.metrics.is_correct`` (F1 against a gold
answer, CMRC 2018 scoring, at least ``CORRECT_F1``). Each set is written to ``WORK/features/NAME.npz`` (resumable: a set
already written is skipped).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa.decide.features import FEATURES, candidate_features
from qa.errors import UsageError
from qa.evaluation import metrics
from qa.evaluation.run import squad_documents, squad_index
from tools.decision.sets import ALL_SETS, reader_training_ids, write_subset

POOL_KEEP = 12          # candidates of one question kept for fitting (by pooled score)
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")


def shifted_year(question: str, context: str) -> str | None:
    """The question with its (first) year moved to a nearby year the paragraph does not name."""
    m = _YEAR.search(question)
    if not m or m.group(1) not in context:
        return None
    year = int(m.group(1))
    for step in (3, -3, 5, -5, 7, 11):
        other = str(year + step)
        if other not in context:
            return question[:m.start(1)] + other + question[m.end(1):]
    return None


def collect_set(name: str, work: Path, limit: int | None, used: set[str]) -> dict:
    from embeddings.encoders import get_encoder
    from qa.pipeline import Pipeline, score_sentences
    from qa.read.decided import DecidedReader

    role = ALL_SETS[name][3]
    path = write_subset(name, work / "subsets", used)
    docs, questions = squad_documents(path)
    contexts = {d.doc_id: d.text for d in docs}
    if limit:
        questions = questions[:limit]
    index_dir = squad_index(path, get_encoder())
    reader = DecidedReader(decision=False)
    pipe = Pipeline.load(index_dir, retriever="hybrid", reader=reader)
    rows, labels, groups, variants, texts = [], [], [], [], []
    meta = []
    t0 = time.perf_counter()

    def record(question, hits, golds, variant, qid):
        score_sentences(pipe.index, question, hits)
        pool = reader.read(question, hits, pipe.index)[:POOL_KEEP]
        group = len(meta)
        meta.append({"qid": qid, "variant": variant, "question": question.text, "answerable": bool(golds),
                     "kind": question.kind, "n": len(pool)})
        if not pool:
            return
        x = candidate_features(question, pool, pipe.index)
        for c, row in zip(pool, x):
            rows.append(row)
            labels.append(1 if metrics.is_correct(c.text, golds) else 0)
            groups.append(group)
            variants.append(variant)
            texts.append(c.text)

    for n, q in enumerate(questions):
        golds = [a["text"] for a in q["answers"]]
        try:
            question = pipe.question(q["question"])
        except UsageError:          # an empty or over-long question in the set: not a user's question
            continue
        hits = pipe.retriever.retrieve(question, 10)
        record(question, [replace(h, rank=r) for r, h in enumerate(hits[:5])], golds, "asked", q["id"])
        if golds:
            kept = [h for h in hits if h.chunk.doc_id != q["doc_id"]][:5]
            record(question, [replace(h, rank=r, sentence_ids=None, sentence_similarity=None)
                              for r, h in enumerate(kept)], [], "removed", q["id"])
            if role == "fit":
                other = shifted_year(q["question"], contexts[q["doc_id"]])
                if other:
                    oq = pipe.question(other)
                    record(oq, pipe.retriever.retrieve(oq, 5), [], "year", q["id"])
        if (n + 1) % 100 == 0:
            print(f"{name}: {n + 1}/{len(questions)} questions, {time.perf_counter() - t0:.0f}s", file=sys.stderr,
                  flush=True)
    out = work / "features" / f"{name}.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x=np.asarray(rows, dtype=np.float32).reshape(-1, len(FEATURES)),
                        y=np.asarray(labels, dtype=np.int8), group=np.asarray(groups, dtype=np.int32),
                        variant=np.asarray(variants), text=np.asarray(texts), features=np.asarray(FEATURES))
    (work / "features" / f"{name}.questions.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return {"set": name, "questions": len(questions), "groups": len(meta), "candidates": len(rows),
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.decision.collect", description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="*", default=list(ALL_SETS))
    p.add_argument("--work", type=Path, default=Path("decision-work"))
    p.add_argument("--limit", type=int, default=None, help="questions per set (default: all)")
    p.add_argument("--force", action="store_true", help="collect again sets already written")
    args = p.parse_args(argv)
    used = reader_training_ids()
    for name in args.sets:
        if (args.work / "features" / f"{name}.npz").exists() and not args.force:
            print(f"{name}: already collected", file=sys.stderr)
            continue
        print(json.dumps(collect_set(name, args.work, args.limit, used)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
