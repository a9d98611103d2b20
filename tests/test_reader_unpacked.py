"""The reader's weights are unpacked once, not at every call (issue 16).

The shipped ``model.onnx`` keeps int8 weights behind ``DequantizeLinear`` nodes that
onnxruntime runs on every call; ``unpack_weights`` writes the same graph with those values
computed once. It must compute the same function: compared here with the shipped graph
run without graph optimisations (which is exactly the arithmetic the export describes).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx package unpacks the reader's weights (a core dependency)")
ort = pytest.importorskip("onnxruntime")

from qa.paths import READER_MODEL_DIR  # noqa: E402
from qa.read.neural.backends import ONNX_FILE, OnnxSpanModel, unpack_weights  # noqa: E402
from qa.read.neural.tokenizer import PairTokenizer  # noqa: E402

if not (READER_MODEL_DIR / ONNX_FILE).exists():
    pytest.skip(f"no shipped {ONNX_FILE} in {READER_MODEL_DIR}", allow_module_level=True)


def _inputs():
    tok = PairTokenizer(READER_MODEL_DIR / "tokenizer.json")
    enc = tok.windows(["新材料产业产值是多少"] * 2,
                      ["2020年上虞新材料产业实现工业总产值604.5亿元,增长16.7%。", "经开区2019年经济总量达到1350亿。"])
    return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}


def _run(path, inputs):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, inputs)


def test_unpacked_weights_compute_the_same_logits(tmp_path):
    out = unpack_weights(READER_MODEL_DIR / ONNX_FILE, tmp_path / "unpacked.onnx")
    inputs = _inputs()
    for packed, unpacked in zip(_run(READER_MODEL_DIR / ONNX_FILE, inputs), _run(out, inputs)):
        assert np.abs(packed - unpacked).max() < 1e-3


def test_the_unpacked_graph_has_no_dequantize_left(tmp_path):
    import onnx
    out = unpack_weights(READER_MODEL_DIR / ONNX_FILE, tmp_path / "unpacked.onnx")
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "DequantizeLinear" not in ops


def test_the_backend_uses_the_unpacked_copy_and_falls_back_to_the_shipped_file(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_HOME", str(tmp_path / "home"))
    model = OnnxSpanModel(READER_MODEL_DIR, threads=1)
    assert model.model_path.parent == tmp_path / "home" / "models"
    monkeypatch.setenv("QA_READER_UNPACK", "0")
    assert OnnxSpanModel(READER_MODEL_DIR, threads=1).model_path == READER_MODEL_DIR / ONNX_FILE


def test_a_damaged_model_is_a_clear_model_error(tmp_path):
    from qa.errors import ModelError
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(ModelError, match="cannot load the reader model"):
        unpack_weights(bad, tmp_path / "out.onnx")
