"""``python -m tools.bench.stores``: the Milvus store against the FAISS store, in one run.

1. Seed set: the seeds indexed into a Milvus collection (vectors from the prebuilt seeds cache,
   so both stores hold the same vectors); every answerable seed question retrieved by the FAISS
   path (project BM25 + min-max fusion, the default) and by each Milvus fusion (min-max computed
   from Milvus's scores, Milvus's RRF k=60, Milvus's weighted ranker 0.5/0.5) with each Milvus
   keyword field (the project's tokens, jieba words): recall@1, recall@5, MRR (a hit = a chunk
   containing a gold span, as ``qa eval``). Then every seed question answered end to end through
   both stores: how many answers and citations are the same.
2. DRCD dev sample (``--drcd FILE --paragraphs N``): the first N paragraphs indexed into a FAISS
   folder and a Milvus collection (same vectors), their questions retrieved as above; a hit = a
   chunk of the question's gold paragraph.
3. Throughput (``--throughput M``): M further DRCD paragraphs (not cached) indexed into fresh
   Milvus collections by the plain in-process path and by ``--ray`` on a local Ray
   (``ray.init(num_cpus=…)``), same machine, same run: passages per second and their ratio.

``--store`` picks the Milvus (default: a milvus-lite folder in a temporary directory).
Prints a Markdown table per part; ``--json FILE`` writes every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

COMBOS = [("minmax", "terms"), ("rrf", "terms"), ("weighted", "terms"),
          ("minmax", "jieba"), ("rrf", "jieba"), ("weighted", "jieba")]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _scores(ranks: list) -> dict:
    n = len(ranks)
    return {"n": n, "recall@1": 100 * sum(r == 1 for r in ranks) / n,
            "recall@5": 100 * sum(r is not None and r <= 5 for r in ranks) / n,
            "mrr": sum(1 / r for r in ranks if r) / n}


def retrieval_table(faiss_pipe, milvus_store, milvus_data, questions, rank_of) -> dict:
    """recall@1/@5/MRR of every retriever on ``questions``: ``rank_of(q, hits)`` → 1-based rank or None."""
    from qa.index.milvus_store import MilvusRetriever
    retrievers = {"faiss: project BM25 + min-max (default)": faiss_pipe.retriever,
                  "faiss: project BM25 alone": faiss_pipe.bm25, "faiss: dense alone": faiss_pipe.dense}
    for fusion, field in COMBOS:
        retrievers[f"milvus: {fusion}, {field}"] = MilvusRetriever(milvus_store, milvus_data, "hybrid", fusion, field)
    for field in ("terms", "jieba"):
        retrievers[f"milvus: BM25 alone, {field}"] = MilvusRetriever(milvus_store, milvus_data, "bm25", field=field)
    retrievers["milvus: dense alone"] = MilvusRetriever(milvus_store, milvus_data, "dense")
    ranks: dict[str, list] = {name: [] for name in retrievers}
    seconds = {name: 0.0 for name in retrievers}
    for q in questions:
        question = faiss_pipe.question(q["question"])
        for name, r in retrievers.items():
            t0 = time.perf_counter()
            hits = r.retrieve(question, 5)
            seconds[name] += time.perf_counter() - t0
            ranks[name].append(rank_of(q, hits))
    return {name: {**_scores(ranks[name]), "ms_per_query": 1e3 * seconds[name] / max(1, len(questions))}
            for name in retrievers}


def print_table(title: str, table: dict) -> None:
    print(f"\n### {title}\n")
    print("| retriever | n | recall@1 | recall@5 | MRR | ms/query |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, m in table.items():
        print(f"| {name} | {m['n']} | {m['recall@1']:.1f} | {m['recall@5']:.1f} | {m['mrr']:.3f} | {m['ms_per_query']:.1f} |")


def seed_part(store_text: str, out: dict) -> None:
    from qa.evaluation import metrics
    from qa.evaluation.run import EVAL_SET, load_eval_set
    from qa.index.backends import open_store
    from qa.index.stores import update_store
    from qa.pipeline import Pipeline
    store = open_store(store_text)
    report, _ = update_store(store, [], seeds=True)
    print(f"seeds in {store_text}: {report.texts_encoded} passages encoded, {report.texts_cached} from cache",
          file=sys.stderr)
    faiss_pipe = Pipeline.load()
    milvus_pipe = Pipeline.load(store=store_text)
    questions = load_eval_set(EVAL_SET)
    answerable = [q for q in questions if not q.get("no_answer") and any(a.get("start", -1) >= 0 for a in q["answers"])]

    def rank_of(q, hits):
        spans = [a for a in q["answers"] if a.get("start", -1) >= 0]
        return metrics.hit_rank([h.chunk for h in hits], spans)

    table = retrieval_table(faiss_pipe, milvus_pipe.store, milvus_pipe.index, answerable, rank_of)
    print_table(f"Seed set: {len(answerable)} answerable questions", table)
    same_answer = same_citation = 0
    differ = []
    for q in questions:
        a, b = faiss_pipe.answer(q["question"]), milvus_pipe.answer(q["question"])
        cite = lambda x: [(c.doc_id, c.start, c.end) for c in x.citations]  # noqa: E731
        same_answer += (a.text, a.no_answer) == (b.text, b.no_answer)
        same_citation += cite(a) == cite(b)
        if (a.text, a.no_answer, cite(a)) != (b.text, b.no_answer, cite(b)):
            differ.append({"id": q["id"], "faiss": a.text, "milvus": b.text})
    print(f"\nSeed answers through both stores ({milvus_pipe.retriever.name}): {same_answer}/{len(questions)} "
          f"same answer, {same_citation}/{len(questions)} same citations; differing: "
          f"{', '.join(d['id'] for d in differ) or 'none'}")
    out["seeds"] = {"retrieval": table, "questions": len(questions), "same_answer": same_answer,
                    "same_citation": same_citation, "differ": differ, "milvus_retriever": milvus_pipe.retriever.name}


def drcd_paragraphs(path: Path, first: int, count: int):
    from qa.evaluation.run import squad_documents
    docs, questions = squad_documents(path)
    keep = docs[first:first + count]
    ids = {d.doc_id for d in keep}
    return keep, [q for q in questions if q["doc_id"] in ids and q["answers"]]


def drcd_part(path: Path, n: int, store_text: str, work: Path, out: dict) -> None:
    from embeddings.encoders import get_encoder
    from qa.index.backends import open_store
    from qa.index.build import index_documents
    from qa.index.stores import index_into_store
    from qa.pipeline import Pipeline
    docs, questions = drcd_paragraphs(path, 0, n)
    enc = get_encoder()
    index_dir = work / f"drcd-{n}"
    t0 = time.perf_counter()
    index_documents(docs, index_dir, enc)
    faiss_seconds = time.perf_counter() - t0
    store = open_store(store_text)
    index_into_store(docs, store, enc, caches=[index_dir / "cache"])
    faiss_pipe = Pipeline.load(index_dir)
    milvus_pipe = Pipeline.load(store=store_text)
    table = retrieval_table(faiss_pipe, milvus_pipe.store, milvus_pipe.index, questions,
                            lambda q, hits: next((r for r, h in enumerate(hits, 1) if h.chunk.doc_id == q["doc_id"]),
                                                 None))
    print_table(f"DRCD dev, first {n} paragraphs ({len(faiss_pipe.index.chunks)} chunks): {len(questions)} "
                f"questions, a hit = a chunk of the gold paragraph", table)
    out["drcd"] = {"paragraphs": n, "chunks": len(faiss_pipe.index.chunks), "questions": len(questions),
                   "retrieval": table, "faiss_index_seconds": faiss_seconds}


def throughput_part(path: Path, first: int, m: int, work: Path, out: dict, cpus: int) -> None:
    from embeddings.encoders import get_encoder
    from qa.index.backends import open_store
    from qa.index.ray_build import RayEncoder
    from qa.index.stores import index_into_store
    docs, _ = drcd_paragraphs(path, first, m)
    enc = get_encoder()
    enc.encode_passages(["预热"])
    results = {}
    t0 = time.perf_counter()
    ray_enc = RayEncoder(None, None, num_cpus=cpus)
    ray_enc.start()
    ray_start = time.perf_counter() - t0
    for name, encode_rows in (("plain", None), ("ray", ray_enc), ("plain again", None)):
        store = open_store(f"milvus-lite:{work}/tp-{name.replace(' ', '-')}.db#tp")
        t0 = time.perf_counter()
        report = index_into_store(docs, store, enc, encode_rows=encode_rows)
        seconds = time.perf_counter() - t0
        results[name] = {"passages": report.texts_encoded, "chars": report.chars_encoded, "seconds": seconds,
                         "passages_per_s": report.texts_encoded / seconds}
        store.close()
    ray_enc.shutdown()
    plain = (results["plain"]["passages_per_s"] + results["plain again"]["passages_per_s"]) / 2
    ratio = results["ray"]["passages_per_s"] / plain
    print(f"\n### Indexing throughput: {m} DRCD paragraphs, {results['plain']['passages']} passages "
          f"({results['plain']['chars']} characters), into milvus-lite; {cpu_model()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| path | seconds | passages/s | × plain |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['seconds']:.1f} | {r['passages_per_s']:.1f} | {r['passages_per_s'] / plain:.2f} |")
    print(f"\nRay start-up (ray.init, num_cpus={cpus}; not in the figures above): {ray_start:.1f} s")
    out["throughput"] = {"paragraphs": m, "results": results, "ray_over_plain": ratio, "ray_start_s": ray_start,
                         "cpu": cpu_model(), "cpus": os.cpu_count(), "ray_num_cpus": cpus}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.stores", description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default=None, help="a Milvus store for the seed set (default: milvus-lite in a temp dir)")
    ap.add_argument("--drcd", default=None, help="a SQuAD-format file (e.g. ../shared/data/drcd_dev.json)")
    ap.add_argument("--paragraphs", type=int, default=200)
    ap.add_argument("--throughput", type=int, default=0, metavar="M", help="paragraphs for the throughput part")
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--skip-seeds", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    out: dict = {"cpu": cpu_model(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="qa-bench-stores-") as tmp:
        work = Path(tmp)
        if not args.skip_seeds:
            seed_part(args.store or f"milvus-lite:{work}/seeds.db#seeds", out)
        if args.drcd:
            drcd_part(Path(args.drcd), args.paragraphs, f"milvus-lite:{work}/drcd.db#drcd", work, out)
            if args.throughput:
                throughput_part(Path(args.drcd), args.paragraphs, args.throughput, work, out, args.ray_cpus)
    if args.json:
        Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
