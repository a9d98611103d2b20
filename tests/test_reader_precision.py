"""The neural reader's matrix products in int8 or fp32 (issue 16).

``pick_precision`` chooses int8 where the CPU has VNNI and fp32 elsewhere, unless
``QA_READER_PRECISION`` says otherwise; the int8 graph is built once from the shipped model
into ``$QA_HOME/models/``, a damaged cached graph is written again, and where the int8 graph
cannot be built the fp32 one answers. On a VNNI CPU the int8 reader gives the fp32 reader's
spans on the questions below.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx package writes the reader's cached graphs (a core dependency)")
pytest.importorskip("onnxruntime")

from embeddings.onnx_encoder import cpu_flags, physical_cores  # noqa: E402
from qa.errors import ModelError  # noqa: E402
from qa.paths import READER_MODEL_DIR  # noqa: E402
from qa.read.neural import backends, int8  # noqa: E402
from qa.read.neural.backends import (ONNX_FILE, OnnxSpanModel, int8_model_path, pick_precision,  # noqa: E402
                                     unpacked_model_path)

HAVE_MODEL = (READER_MODEL_DIR / ONNX_FILE).exists()
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason=f"no shipped {ONNX_FILE} in {READER_MODEL_DIR}")

XEON_SPR = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_int8

processor\t: 1
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_int8
"""
AVX2_ONLY = """processor\t: 0
model name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse2 avx avx2 fma bmi2
"""
ALDER_LAKE = AVX2_ONLY.replace("bmi2", "bmi2 avx_vnni")


def _cpuinfo(tmp_path, text):
    path = tmp_path / "cpuinfo"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ the choice
@pytest.mark.parametrize("text, expected", [(XEON_SPR, "int8"), (ALDER_LAKE, "int8"), (AVX2_ONLY, "fp32")])
def test_auto_takes_int8_only_where_the_cpu_has_vnni(tmp_path, monkeypatch, text, expected):
    monkeypatch.delenv("QA_READER_PRECISION", raising=False)
    assert pick_precision(flags=cpu_flags(_cpuinfo(tmp_path, text))) == expected


def test_an_unreadable_cpuinfo_means_fp32(tmp_path, monkeypatch):
    monkeypatch.delenv("QA_READER_PRECISION", raising=False)
    assert cpu_flags(tmp_path / "missing") == set()
    assert pick_precision(flags=cpu_flags(tmp_path / "missing")) == "fp32"


def test_the_environment_overrides_the_cpu(monkeypatch):
    vnni, avx2 = {"avx2", "avx512_vnni"}, {"avx2", "fma"}
    monkeypatch.setenv("QA_READER_PRECISION", "fp32")
    assert pick_precision(flags=vnni) == "fp32"
    monkeypatch.setenv("QA_READER_PRECISION", " INT8 ")
    assert pick_precision(flags=avx2) == "int8"
    monkeypatch.setenv("QA_READER_PRECISION", "auto")
    assert pick_precision(flags=avx2) == "fp32"
    assert pick_precision("int8", flags=avx2) == "int8"      # an argument wins over the environment


def test_an_unknown_precision_is_a_model_error_that_lists_the_choices(monkeypatch):
    monkeypatch.setenv("QA_READER_PRECISION", "int4")
    with pytest.raises(ModelError, match="auto, fp32, int8"):
        pick_precision()


def test_hyper_threads_count_once(tmp_path):
    two_threads_one_core = _cpuinfo(tmp_path, XEON_SPR)
    assert physical_cores(two_threads_one_core, allowed={0, 1}) == 1
    two_cores = _cpuinfo(tmp_path, XEON_SPR.replace("processor\t: 1\nphysical id\t: 0\ncore id\t\t: 0",
                                                    "processor\t: 1\nphysical id\t: 0\ncore id\t\t: 1"))
    assert physical_cores(two_cores, allowed={0, 1}) == 2
    assert physical_cores(two_cores, allowed={1}) == 1          # only the CPUs this process may use
    assert physical_cores(tmp_path / "missing", allowed={0, 1, 2}) == 3


# ------------------------------------------------------------------ the cached graphs
def _inputs():
    from qa.read.neural.tokenizer import PairTokenizer
    tok = PairTokenizer(READER_MODEL_DIR / "tokenizer.json")
    enc = tok.windows(["新材料产业产值是多少"] * 2,
                      ["2020年上虞新材料产业实现工业总产值604.5亿元,增长16.7%。", "经开区2019年经济总量达到1350亿。"])
    return enc.input_ids, enc.attention_mask


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QA_READER_PRECISION", raising=False)
    monkeypatch.delenv("QA_READER_UNPACK", raising=False)
    return tmp_path / "home"


@needs_model
def test_the_int8_graph_is_built_once_beside_the_unpacked_one(home):
    model = OnnxSpanModel(READER_MODEL_DIR, threads=1, precision="int8")
    assert model.precision == "int8" and not model.fallback
    assert model.model_path == int8_model_path(READER_MODEL_DIR)
    assert model.model_path.parent == home / "models" and unpacked_model_path(READER_MODEL_DIR).exists()
    mtime = model.model_path.stat().st_mtime_ns
    start, end = OnnxSpanModel(READER_MODEL_DIR, threads=1, precision="int8")(*_inputs())
    assert model.model_path.stat().st_mtime_ns == mtime       # the second load built nothing
    assert start.shape == end.shape == _inputs()[0].shape


@needs_model
def test_the_per_token_scaling_alone_computes_the_same_logits(home):
    """Before quantising, dividing each token by its maximum and multiplying back is exact."""
    import onnx
    import onnxruntime as ort
    from qa.read.neural.backends import unpack_weights
    fp32 = onnx.load(str(unpack_weights(READER_MODEL_DIR / ONNX_FILE, home / "fp32.onnx")))
    scaled = onnx.load(str(home / "fp32.onnx"))
    layers = json.loads((READER_MODEL_DIR / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
    assert int8.scale_per_token(scaled) == 4 * layers  # per layer: QKV, attention output, FFN in, FFN out
    ids, mask = _inputs()

    def logits(model):
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"input_ids": ids, "attention_mask": mask})
    for a, b in zip(logits(fp32), logits(scaled)):
        assert np.abs(a - b).max() < 1e-3


@needs_model
@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_a_damaged_cached_graph_is_written_again(home, precision):
    for path in (int8_model_path(READER_MODEL_DIR), unpacked_model_path(READER_MODEL_DIR)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x08\x07half a model" * 50)
    model = OnnxSpanModel(READER_MODEL_DIR, threads=1, precision=precision)
    assert model.precision == precision and not model.fallback
    assert model.model_path.stat().st_size > 1_000_000
    start, _ = model(*_inputs())
    assert np.isfinite(start).all()


@needs_model
def test_where_the_int8_graph_cannot_be_built_the_fp32_one_answers(home, monkeypatch):
    def broken(src, dst):
        raise RuntimeError("the quantiser does not know this graph")
    monkeypatch.setattr(int8, "quantize_graph", broken)
    model = OnnxSpanModel(READER_MODEL_DIR, threads=1, precision="int8")
    assert model.precision == "fp32" and "int8" in model.fallback and "does not know" in model.fallback
    assert model.model_path == unpacked_model_path(READER_MODEL_DIR)
    assert not int8_model_path(READER_MODEL_DIR).exists()
    start, _ = model(*_inputs())
    assert np.isfinite(start).all()


@needs_model
def test_without_unpacking_the_shipped_graph_runs_in_fp32(home, monkeypatch):
    monkeypatch.setenv("QA_READER_UNPACK", "0")
    model = OnnxSpanModel(READER_MODEL_DIR, threads=1, precision="int8")
    assert model.precision == "fp32" and model.model_path == READER_MODEL_DIR / ONNX_FILE


# ------------------------------------------------------------------ the same answers
PARAGRAPHS = [
    ("新材料产业产值是多少?",
     "2020年,上虞新材料产业实现工业总产值604.5亿元,同比增长16.7%,占全区规上工业的比重达到45%。"),
    ("青山縣於哪一年升級為國家級生態示範區?",
     "青山縣位於省境西部。青山縣於2015年12月升級為國家級生態示範區。全縣森林覆蓋率達到78%,被譽為“天然氧吧”。"),
    ("白鹭湖新区有多少家高新技术企业?",
     "白鹭湖新区成立于2008年,规划面积120平方公里。截至去年底,新区共有高新技术企业86家,上市公司5家。"),
    ("谁担任北京大学品牌价值研究平台的秘书长?",
     "论坛由北京大学经济学院主办。北京大学品牌价值研究平台秘书长刘雪明主持了圆桌讨论,多位企业家参加。"),
]


@needs_model
@pytest.mark.skipif(not (cpu_flags() & backends.VNNI_FLAGS),
                    reason="int8 runs only where the CPU has VNNI (elsewhere its kernels may saturate)")
def test_the_int8_reader_gives_the_fp32_readers_spans(home):
    from qa.read.neural.reader import TransformersReader
    fp32_reader = TransformersReader(backend="onnx", precision="fp32", threads=1)
    int8_reader = TransformersReader(backend="onnx", precision="int8", threads=1)
    assert (fp32_reader.model.precision, int8_reader.model.precision) == ("fp32", "int8")
    for question, paragraph in PARAGRAPHS:
        (s1, e1, _, _), = fp32_reader.predict(question, [paragraph])
        (s2, e2, _, _), = int8_reader.predict(question, [paragraph])
        assert paragraph[s2:e2] == paragraph[s1:e1], question
