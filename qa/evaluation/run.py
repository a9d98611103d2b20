"""``qa eval``: score answers, retrieval, citations and abstaining.

Seed set (default): every question of ``eval/seed_questions.jsonl`` through the
hybrid default and the BM25-only and dense-only baselines, side by side.
SQuAD-format sets (``--squad FILE``): ``--mode reader`` reads each question's own
gold paragraph; ``--mode open`` retrieves from all paragraphs of the file first.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from qa.evaluation import metrics
from qa.evaluation.report import table, write_report
from qa.evaluation.squad import read_squad
from qa.errors import UsageError
from qa.paths import EVAL_SET
from qa.types import Answer, Document, PassageHit

RETRIEVAL_DEPTH = 5


@dataclass
class Outcome:
    """One question's result under one configuration."""

    qid: str
    question: str
    kind: str
    tags: list[str]
    gold: list[dict]
    gold_no_answer: bool
    prediction: str
    predicted_no_answer: bool
    em: float
    f1: float
    rank: int | None            # 1-based rank of the first passage holding a gold span
    citation_ok: bool | None
    latency_ms: float
    cited: dict | None = None
    score: float = 0.0          # the answer's stated probability (the best candidate's, when not found)
    state: str = ""             # answer | probable | not_found
    correct: bool = False       # the best candidate is right (metrics.is_correct), answered or not


@dataclass
class Summary:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def metrics(self, subset=None) -> dict:
        rows = [o for o in self.outcomes if subset is None or subset(o)]
        if not rows:
            return {}
        answerable = [o for o in rows if not o.gold_no_answer]
        out = {
            "n": len(rows),
            "em": 100 * sum(o.em for o in rows) / len(rows),
            "f1": 100 * sum(o.f1 for o in rows) / len(rows),
        }
        if answerable:
            out["answerable_em"] = 100 * sum(o.em for o in answerable) / len(answerable)
            out["answerable_f1"] = 100 * sum(o.f1 for o in answerable) / len(answerable)
            ranked = [o for o in answerable if o.rank is not None or True]
            out["recall@1"] = 100 * sum(1 for o in ranked if o.rank == 1) / len(ranked)
            out["recall@5"] = 100 * sum(1 for o in ranked if o.rank is not None and o.rank <= 5) / len(ranked)
            out["mrr"] = sum(1 / o.rank for o in ranked if o.rank) / len(ranked)
            cited = [o for o in answerable if not o.predicted_no_answer]
            out["citation_acc"] = 100 * sum(1 for o in cited if o.citation_ok) / len(answerable)
        stated = [(o.score, o.correct) for o in rows]
        out["ece"] = metrics.calibration(stated)[1]
        answered = [o for o in rows if o.state == "answer"]
        out["answer_precision"] = 100 * sum(o.correct for o in answered) / len(answered) if answered else 100.0
        out["answer_coverage"] = 100 * len(answered) / len(rows)
        if any(o.gold_no_answer for o in rows):
            prf = metrics.no_answer_prf((o.predicted_no_answer, o.gold_no_answer) for o in rows)
            out.update({"noans_p": 100 * prf.precision, "noans_r": 100 * prf.recall, "noans_f1": 100 * prf.f1})
        lat = [o.latency_ms for o in rows]
        out["p50_ms"] = metrics.percentile(lat, 50)
        out["p95_ms"] = metrics.percentile(lat, 95)
        return out

    def by_kind(self) -> dict[str, dict]:
        kinds = sorted({o.kind for o in self.outcomes})
        out = {k: self.metrics(lambda o, k=k: o.kind == k) for k in kinds}
        tags = sorted({t for o in self.outcomes for t in o.tags})
        out.update({f"tag:{t}": self.metrics(lambda o, t=t: t in o.tags) for t in tags})
        return out


def load_eval_set(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def evaluate(pipeline, questions: list[dict], name: str, passages_for=None, abstain: bool = True,
             progress=None) -> Summary:
    """Run ``questions`` through ``pipeline.run``; ``passages_for(item, question)`` replaces retrieval
    (reader mode: the gold paragraph). ``progress(n)`` is called after each question."""
    summary = Summary(name)
    for q in questions:
        passages = (lambda question, q=q: passages_for(q, question)) if passages_for else None
        try:
            reading = pipeline.run(q["question"], RETRIEVAL_DEPTH, abstain=abstain, passages=passages)
        except UsageError as e:
            # a question no user could ask (empty, over-long) stays in the set, scored as not
            # answered, instead of ending the whole run
            print(f"question {q['id']}: {e}; scored as not answered", file=sys.stderr)
            a, hits = Answer(question=q["question"], text="", score=0.0, no_answer=True,
                             timings={"total_ms": 0.0}), []
        else:
            a, hits = reading.answer, reading.hits
        gold = q.get("answers", [])
        gold_no = bool(q.get("no_answer")) or not gold
        pred = "" if a.no_answer else a.text
        em, f1 = metrics.score(pred, gold)
        spans = [g for g in gold if g.get("start", -1) >= 0 and g.get("doc_id")]
        rank = metrics.hit_rank([h.chunk for h in hits], spans) if spans else None
        best = a.text if not a.no_answer else (a.alternatives[0].text if a.alternatives else "")
        cit = a.citations[0] if a.citations else None
        cit_ok = (metrics.citation_correct(cit.doc_id, cit.start, cit.end, spans) if cit and spans else
                  (None if gold_no else False))
        summary.outcomes.append(Outcome(q["id"], q["question"], q.get("kind", "squad"), q.get("tags", []), gold,
                                        gold_no, pred, a.no_answer, em, f1, rank, cit_ok, a.timings["total_ms"],
                                        cit.to_dict() if cit else None, float(a.score), a.state,
                                        metrics.is_correct(best, [g["text"] for g in gold])))
        if progress:
            progress(1)
    return summary


def run_seed_eval(args) -> dict:
    from qa.pipeline import Pipeline
    questions = load_eval_set(Path(args.questions) if args.questions else EVAL_SET)
    if args.limit:
        questions = questions[:args.limit]
    reader = None
    if args.reader:
        from qa.read.base import make_reader
        reader = make_reader(args.reader)
    configs = ["hybrid", "bm25", "dense"] if args.baselines else ["hybrid"]
    summaries = {}
    store = getattr(args, "store", None)
    base = Pipeline.load(retriever="hybrid", reader=reader, store=store)
    with progress_bar(len(questions) * len(configs), "questions") as bar:
        for name in configs:
            pipe = base if name == "hybrid" else Pipeline(base.index, base.encoder, name, base.reader, base.index_dir,
                                                          store=base.store)
            pipe.answer("预热")  # first call warms caches; not timed
            summaries[name] = evaluate(pipe, questions, name, progress=bar)
    return {"set": str(args.questions or EVAL_SET), "summaries": summaries}


def progress_bar(total: int, unit: str):
    """A progress bar on stderr when it is a terminal (nothing otherwise), as a context manager."""
    import contextlib

    from qa.progress import TerminalProgress
    bar = TerminalProgress(sys.stderr, unit=unit, verbs=("answering", "answered"))
    bar.start(total, 0)

    @contextlib.contextmanager
    def running():
        try:
            yield bar
        finally:
            bar.close()
    return running()


def squad_documents(path: Path) -> tuple[list[Document], list[dict]]:
    """Paragraphs of a SQuAD-format file as documents, and its questions with gold spans."""
    paragraphs, records = read_squad(path, locate=False)
    docs = [Document(doc_id=p["doc_id"], title=p["title"] or p["doc_id"], text=p["context"], source=str(path))
            for p in paragraphs]
    questions = []
    for r in records:
        answers = [] if r["impossible"] else [
            {"text": a["text"], "doc_id": r["doc_id"], "start": a["answer_start"],
             "end": a["answer_start"] + len(a["text"])} for a in r["answers"]]
        # a few CMRC answers have answer_start -1 or a stale offset: score on text alone
        for a in answers:
            if a["start"] < 0 or r["context"][a["start"]:a["end"]] != a["text"]:
                a["start"] = -1
        questions.append({"id": r["id"], "question": r["question"], "answers": answers,
                          "no_answer": not answers, "doc_id": r["doc_id"], "kind": "squad"})
    return docs, questions


def squad_index(path: Path, encoder) -> Path:
    """Index a SQuAD file's paragraphs once, cached under $QA_HOME/eval/."""
    from qa.index.build import index_documents
    from qa.paths import qa_home
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
    index_dir = qa_home() / "eval" / f"{path.stem}-{digest}"
    docs, _ = squad_documents(path)
    if not (index_dir / "manifest.json").exists():
        print(f"indexing {len(docs)} paragraphs of {path.name} into {index_dir} (once) …", file=sys.stderr)
        index_documents(docs, index_dir, encoder)
    return index_dir


def run_squad_eval(args) -> dict:
    from embeddings.encoders import get_encoder
    from qa.pipeline import Pipeline
    path = Path(args.squad)
    if not path.exists():
        from qa.errors import InputError
        raise InputError(f"{path}: no such file")
    docs, questions = squad_documents(path)
    if args.limit:
        questions = questions[:args.limit]
    encoder = get_encoder()
    t0 = time.perf_counter()
    index_dir = squad_index(path, encoder)
    index_seconds = time.perf_counter() - t0
    reader = None
    if args.reader:
        from qa.read.base import make_reader
        reader = make_reader(args.reader)
    pipe = Pipeline.load(index_dir, retriever="hybrid", reader=reader)
    abstain = any(q["no_answer"] for q in questions)
    chunks_of: dict[str, list] = defaultdict(list)
    for c in pipe.index.chunks:
        chunks_of[c.doc_id].append(c)

    def gold_paragraph(q, question):
        chunks = chunks_of[q["doc_id"]]
        vecs = [pipe.index.chunk_index.reconstruct(c.chunk_id) for c in chunks]
        order = sorted(range(len(chunks)), key=lambda i: -float(vecs[i] @ question.vector))
        return [PassageHit(chunks[i], float(vecs[i] @ question.vector), r) for r, i in enumerate(order)]

    t0 = time.perf_counter()
    name = f"{path.stem} {args.mode}"
    with progress_bar(len(questions), "questions") as bar:
        summary = evaluate(pipe, questions, name, gold_paragraph if args.mode == "reader" else None,
                           abstain=abstain, progress=bar)
    return {"set": str(path), "mode": args.mode, "index_seconds": index_seconds,
            "eval_seconds": time.perf_counter() - t0, "summaries": {name: summary}}


def main(args) -> int:
    result = run_squad_eval(args) if args.squad else run_seed_eval(args)
    summaries: dict[str, Summary] = result["summaries"]
    overall = {name: s.metrics() for name, s in summaries.items()}
    if args.json:
        print(json.dumps({"set": result["set"], "overall": overall,
                          "by_kind": {n: s.by_kind() for n, s in summaries.items()},
                          **{k: v for k, v in result.items() if k.endswith("seconds") or k == "mode"}},
                         ensure_ascii=False, indent=1))
    else:
        print(f"evaluation set: {result['set']}")
        print(table(overall))
        main_summary = next(iter(summaries.values()))
        print(f"\nby kind ({main_summary.name}):")
        print(table(main_summary.by_kind()))
        for k in ("index_seconds", "eval_seconds"):
            if k in result:
                print(f"{k.replace('_', ' ')}: {result[k]:.1f}")
    if args.report:
        path = write_report(Path(args.report), result["set"], summaries)
        print(f"report: {path}", file=sys.stderr)
    return 0
