"""Model backends of the neural reader: the same weights on onnxruntime (default, no torch)
or on torch + transformers (bf16 where the CPU has it; what training uses).

Each is a callable ``(input_ids, attention_mask) -> (start_logits, end_logits)`` (numpy).
``load_model(dir)`` reads the exported int8 format (``qa-reader.json``) or a plain
transformers directory into a ``BertForQuestionAnswering`` for the torch backend.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from qa.errors import ModelError
from qa.paths import READER_MODEL_DIR

META_FILE = "qa-reader.json"
ONNX_FILE = "model.onnx"
BACKENDS = ("onnx", "torch")


def _have(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except (ImportError, ValueError):
        return False


def available_backends(model_dir: str | Path = "") -> list[str]:
    """The backends that can run the model in ``model_dir`` here, best first."""
    d = Path(model_dir) if model_dir else READER_MODEL_DIR
    if not (d / "tokenizer.json").exists() or not _have("tokenizers"):
        return []
    out = []
    if (d / ONNX_FILE).exists() and _have("onnxruntime"):
        out.append("onnx")
    if (d / "config.json").exists() and (d / "model.safetensors").exists() \
            and _have("torch", "transformers", "safetensors"):
        out.append("torch")
    return out


def shipped_model_present(model_dir: str | Path = "") -> bool:
    d = Path(model_dir) if model_dir else READER_MODEL_DIR
    return (d / "tokenizer.json").exists() and (
        (d / ONNX_FILE).exists() or ((d / "config.json").exists() and (d / "model.safetensors").exists()))


class OnnxSpanModel:
    """``model.onnx`` on onnxruntime's CPU provider: (ids, mask) -> (start, end) logits."""
    backend = "onnx"

    def __init__(self, model_dir: Path, threads: int | None = None):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or max(1, min(os.cpu_count() or 1, 8))
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        if os.environ.get("QA_ORT_SPIN", "0") != "1":
            # no busy-waiting between runs: on 2 shared cores spinning threads starve the
            # encoder and other processes (measured: see docs/performance.md)
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(model_dir / ONNX_FILE), so, providers=["CPUExecutionProvider"])
        except Exception as exc:          # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"cannot load the reader model {model_dir / ONNX_FILE}: {exc}") from exc

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sl, el = self.session.run(["start_logits", "end_logits"], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(sl, dtype=np.float32), np.asarray(el, dtype=np.float32)


class TorchSpanModel:
    """transformers' ``BertForQuestionAnswering`` (bf16 where the CPU has it)."""
    backend = "torch"

    def __init__(self, model_dir: Path, bf16: bool | None = None, threads: int | None = None):
        try:
            import torch
        except ImportError as exc:     # pragma: no cover - depends on the install
            raise ModelError("the torch backend of the neural reader needs torch and transformers "
                             "(pip install torch==2.13.0 transformers safetensors)") from exc
        from embeddings.transformers_encoder import cpu_has_bf16   # one CPU check for both models
        self.model = load_model(model_dir)
        self.model.eval()
        self.bf16 = cpu_has_bf16() if bf16 is None else bf16
        if self.bf16:
            self.model.to(torch.bfloat16)
        if threads:
            torch.set_num_threads(threads)

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch
        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        return out.start_logits.float().numpy(), out.end_logits.float().numpy()


def pick_backend(model_dir: str | Path = "", backend: str | None = None) -> str:
    backend = backend or os.environ.get("QA_READER_BACKEND") or None
    if backend is not None and backend not in BACKENDS:
        raise ModelError(f"unknown reader backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    have = available_backends(model_dir)
    if backend is None:
        if not have:
            raise ModelError("the neural reader needs onnxruntime and tokenizers (or torch and transformers), "
                             f"and a model in {Path(model_dir) if model_dir else READER_MODEL_DIR}")
        return have[0]
    if backend not in have:
        raise ModelError(f"the {backend} backend cannot run here: "
                         + ("install onnxruntime and tokenizers, and export model.onnx (python -m tools.reader.export "
                            "--onnx DIR)" if backend == "onnx" else "install torch==2.13.0, transformers, safetensors"))
    return backend



def dequantize_state(tensors: dict) -> dict:
    out = {}
    for k, v in tensors.items():
        if k.endswith(".q8"):
            base = k[:-3]
            out[base] = v.float() * tensors[base + ".scale"].float()[:, None]
        elif k.endswith(".scale"):
            continue
        else:
            out[k] = v.float()
    return out


def load_model(model_dir: str | Path):
    """A ``BertForQuestionAnswering`` from an exported (int8) or a plain transformers directory."""
    from transformers import BertConfig, BertForQuestionAnswering
    d = Path(model_dir)
    if not (d / META_FILE).exists():
        from transformers import AutoModelForQuestionAnswering
        return AutoModelForQuestionAnswering.from_pretrained(str(d), local_files_only=True)
    from safetensors.torch import load_file
    config = BertConfig.from_json_file(str(d / "config.json"))
    model = BertForQuestionAnswering(config, add_pooling_layer=False) \
        if "add_pooling_layer" in BertForQuestionAnswering.__init__.__code__.co_varnames else BertForQuestionAnswering(config)
    state = dequantize_state(load_file(str(d / "model.safetensors")))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("bert.pooler.") and not k.endswith("_ids")]
    if missing or unexpected:
        raise RuntimeError(f"reader model in {d}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.eval()
    return model
