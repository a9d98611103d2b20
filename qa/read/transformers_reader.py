"""The neural reader: an extractive (start/end) span model over the best sentences.

``TransformersReader(model_dir="")`` loads the reader shipped in ``qa/read/model/``
(multilingual-e5-small fine-tuned for span extraction by ``qa train-reader``,
exported by ``qa.read.export``: pruned vocabulary, int8 weights) or any local
transformers question-answering directory. Loading needs no network.

Two backends run the same weights (``backend=`` or ``$QA_READER_BACKEND``):
``onnx`` (the default when ``model.onnx`` and onnxruntime are there: the int8
weights dequantised once at load, fp32 compute; ~0.3 s to import and load, no
torch) and ``torch`` (transformers' ``BertForQuestionAnswering``, bf16 where the
CPU has it; what training uses). Both tokenise with the ``tokenizers`` library
directly (``PairTokenizer``: the same windows as transformers' fast tokenizer).

``read()`` takes the sentences of the top passages, ranks them by semantic
similarity to the question (sentence vectors · question vector) plus question
term coverage and passage rank, builds a few windows of consecutive sentences
around the best ones (≈ ``window_chars`` characters each, at most
``max_windows``; 256-token inputs, the length the model was trained on — 384 cost
6 EM points on DRCD dev), runs them in one batched forward pass and keeps the best
spans of each window (start ≤ end, at most ``max_answer_tokens`` tokens).
Token offsets map back to document offsets, so ``Candidate.text ==
document.text[start:end]``. ``score = sigmoid((span_logit − null_logit) / 2)``
where the null logit is the window's ``<s>`` (no-answer) start+end logit;
``threshold`` (0.86, stored in the model's ``qa-reader.json``) was calibrated on
300 DRCD dev questions + 300 held-out SQuAD 2.0-zh unanswerable questions
(not on the seed eval set).

``predict(question, contexts)`` is the plain reading-comprehension call (one
question, whole paragraphs, overflowing windows) used for SQuAD-style reader
evaluation.
"""
from __future__ import annotations

import bisect
import json
import math
import os
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import ModelError
from qa.read.question import QuestionInfo
from qa.types import Candidate, PassageHit

SHIPPED_DIR = Path(__file__).resolve().parent / "model"
META_FILE = "qa-reader.json"
ONNX_FILE = "model.onnx"
BACKENDS = ("onnx", "torch")
MAX_QUERY_TOKENS = 64
_OPEN = "([{（【《「『“‘〈<"
_CLOSE = ")]}）】》」』”’〉>"
_KEEP_END = "%‰°℃％"
DEFAULT_THRESHOLD = 0.5


def _have(*modules: str) -> bool:
    import importlib.util
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except (ImportError, ValueError):
        return False


def available_backends(model_dir: str | Path = "") -> list[str]:
    """The backends that can run the model in ``model_dir`` here, best first."""
    d = Path(model_dir) if model_dir else SHIPPED_DIR
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
    d = Path(model_dir) if model_dir else SHIPPED_DIR
    return (d / "tokenizer.json").exists() and (
        (d / ONNX_FILE).exists() or ((d / "config.json").exists() and (d / "model.safetensors").exists()))


def default_reader_kind() -> str:
    """``"combined"`` when the shipped model is present and a backend can run it (onnxruntime,
    or torch + transformers); ``"typed"`` otherwise (what ``make_reader`` uses when no kind is given)."""
    return "combined" if available_backends() else "typed"


def _is_punct(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] in "PZ"


def strip_span(text: str, s: int, e: int) -> tuple[int, int]:
    """Drop surrounding spaces and punctuation, keeping brackets that pair up inside the span
    and a trailing percent/degree sign."""
    while s < e:
        ch = text[s]
        if ch.isspace():
            s += 1
            continue
        if _is_punct(ch):
            if ch in _OPEN and _CLOSE[_OPEN.index(ch)] in text[s + 1:e]:
                break
            s += 1
            continue
        break
    while e > s:
        ch = text[e - 1]
        if ch.isspace():
            e -= 1
            continue
        if _is_punct(ch) and ch not in _KEEP_END:
            if ch in _CLOSE and _OPEN[_CLOSE.index(ch)] in text[s:e - 1]:
                break
            e -= 1
            continue
        break
    if e - s > 2 and text[s] in "（(【[" and text[e - 1] == _CLOSE[_OPEN.index(text[s])] \
            and _CLOSE[_OPEN.index(text[s])] not in text[s + 1:e - 1]:
        return strip_span(text, s + 1, e - 1)      # a span wrapped whole in parentheses
    return s, e


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def top_spans(start_logits: np.ndarray, end_logits: np.ndarray, ctx_mask: np.ndarray, max_answer: int,
              k: int = 1) -> list[tuple[float, int, int]]:
    """The ``k`` best non-overlapping ``(score, start_token, end_token)`` inside the context."""
    idx = np.flatnonzero(ctx_mask)
    if idx.size == 0:
        return []
    sl, el = start_logits[idx], end_logits[idx]
    n = idx.size
    mat = sl[:, None] + el[None, :]
    r = np.arange(n)
    band = (r[None, :] >= r[:, None]) & (r[None, :] - r[:, None] < max_answer)
    mat = np.where(band, mat, -np.inf)
    out: list[tuple[float, int, int]] = []
    order = np.argsort(mat, axis=None)[::-1]
    for flat in order[: 200]:
        s, e = divmod(int(flat), n)
        sc = float(mat[s, e])
        if not np.isfinite(sc):
            break
        if any(not (e < s2 or s > e2) for _, s2, e2 in out):
            continue
        out.append((sc, s, e))
        if len(out) >= k:
            break
    return [(sc, int(idx[s]), int(idx[e])) for sc, s, e in out]


@dataclass
class Windows:
    """Model inputs for (question, context) pairs: one row per window of a context.
    ``offsets[i][t]`` are the token's character offsets in its context (or question),
    ``sequence_ids[i][t]`` is 0 (question), 1 (context) or None (special/padding),
    ``sample[i]`` the pair the window came from."""
    input_ids: np.ndarray
    attention_mask: np.ndarray
    offsets: list
    sequence_ids: list
    sample: list

    def context_mask(self, i: int) -> np.ndarray:
        """Which of row ``i``'s (padded) token positions are context tokens."""
        mask = np.zeros(self.input_ids.shape[1], dtype=bool)
        seq = self.sequence_ids[i]
        mask[:len(seq)] = [x == 1 for x in seq]
        return mask


class PairTokenizer:
    """The reader's tokenizer (``tokenizer.json``) through the ``tokenizers`` library: question +
    context pairs cut into overlapping windows exactly as transformers' fast tokenizer does
    (``truncation="only_second"``, ``stride``, overflowing windows), padded to the longest."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(str(path))
        self.tok.no_padding()
        self.tok.no_truncation()
        self.pad_id = self.tok.token_to_id("<pad>")
        self.unk_id = self.tok.token_to_id("<unk>")
        if self.pad_id is None:
            self.pad_id = 0
        self._lock = threading.Lock()

    def encode(self, text: str):
        """Tokens of one text, no special tokens (``.ids``, ``.offsets``)."""
        with self._lock:
            self.tok.no_truncation()
            return self.tok.encode(text, add_special_tokens=False)

    def decode(self, ids) -> str:
        return self.tok.decode(list(ids))

    def truncate_question(self, q: str) -> str:
        enc = self.encode(q)
        if len(enc.ids) > MAX_QUERY_TOKENS:
            q = q[: enc.offsets[MAX_QUERY_TOKENS - 1][1]]
        return q

    def windows(self, questions: list[str], contexts: list[str], max_len: int = 256,
                stride: int = 128) -> Windows:
        with self._lock:
            self.tok.enable_truncation(max_len, stride=stride, strategy="only_second")
            try:
                encs = self.tok.encode_batch(list(zip(questions, contexts)))
            finally:
                self.tok.no_truncation()
        rows, sample = [], []
        for i, e in enumerate(encs):
            for w in [e] + list(e.overflowing):
                rows.append(w)
                sample.append(i)
        n = max(len(w.ids) for w in rows)
        ids = np.full((len(rows), n), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), n), dtype=np.int64)
        for i, w in enumerate(rows):
            ids[i, :len(w.ids)] = w.ids
            mask[i, :len(w.ids)] = w.attention_mask
        return Windows(ids, mask, [list(w.offsets) for w in rows], [list(w.sequence_ids) for w in rows], sample)


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
        from qa.read.export import load_model
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
                             f"and a model in {Path(model_dir) if model_dir else SHIPPED_DIR}")
        return have[0]
    if backend not in have:
        raise ModelError(f"the {backend} backend cannot run here: "
                         + ("install onnxruntime and tokenizers, and export model.onnx (python -m qa.read.export "
                            "--onnx DIR)" if backend == "onnx" else "install torch==2.13.0, transformers, safetensors"))
    return backend


class TransformersReader:
    name = "transformers"
    threshold = DEFAULT_THRESHOLD

    def __init__(self, model_dir: str | Path = "", max_windows: int = 4, window_chars: int = 220,
                 max_answer_tokens: int = 30, max_passages: int = 5, spans_per_window: int = 2,
                 bf16: bool | None = None, threads: int | None = None, backend: str | None = None):
        d = Path(model_dir) if model_dir else SHIPPED_DIR
        if not shipped_model_present(d):
            raise ModelError(f"no reader model in {d} (expected tokenizer.json and model.onnx or "
                             "config.json + model.safetensors)")
        self.model_dir = d
        try:
            self.meta = json.loads((d / META_FILE).read_text(encoding="utf-8")) if (d / META_FILE).exists() else {}
        except (OSError, ValueError) as exc:
            raise ModelError(f"unreadable {d / META_FILE}: {exc}") from exc
        if "threshold" in self.meta:
            self.threshold = float(self.meta["threshold"])
        self.backend = pick_backend(d, backend)
        self.tok = PairTokenizer(d / "tokenizer.json")
        self.model = OnnxSpanModel(d, threads) if self.backend == "onnx" else TorchSpanModel(d, bf16, threads)
        self.max_windows, self.window_chars = max_windows, window_chars
        self.max_answer_tokens, self.max_passages = max_answer_tokens, max_passages
        self.spans_per_window = spans_per_window
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ model call
    def _run(self, questions: list[str], contexts: list[str], max_len: int = 256, stride: int = 128):
        """Tokenise + forward. Returns (windows, start_logits, end_logits) as numpy float32."""
        with self._lock:
            qs = [self.tok.truncate_question(q) for q in questions]
            enc = self.tok.windows(qs, contexts, max_len, stride)
            sl, el = self.model(enc.input_ids, enc.attention_mask)
        return enc, sl, el

    # ------------------------------------------------------------------ plain RC
    def predict(self, question: str, contexts: list[str], max_len: int = 256,
                stride: int = 128) -> list[tuple[int, int, float, float]]:
        """For each context: ``(start_char, end_char, span_logit, null_logit)`` of its best span
        (over all windows of the context; the null logit is the smallest over its windows).
        The answer is ``context[start_char:end_char]``; abstain when ``span_logit - null_logit``
        is low (``score = sigmoid(diff / 2)`` vs ``threshold``)."""
        if not contexts:
            return []
        enc, sl, el = self._run([question] * len(contexts), list(contexts), max_len, stride)
        best: dict[int, list] = {}
        for i, ci in enumerate(enc.sample):
            ctx = enc.context_mask(i)
            spans = top_spans(sl[i], el[i], ctx, self.max_answer_tokens, 1)
            null = float(sl[i][0] + el[i][0])
            offs = enc.offsets[i]
            cur = best.setdefault(ci, [(-math.inf, 0, 0), math.inf])
            if spans and spans[0][0] > cur[0][0]:
                sc, s, e = spans[0]
                cur[0] = (sc, offs[s][0], offs[e][1])
            cur[1] = min(cur[1], null)
        out = []
        for ci, ctx_text in enumerate(contexts):
            (sc, s, e), null = best.get(ci, [(-math.inf, 0, 0), math.inf])
            s2, e2 = strip_span(ctx_text, s, e)
            if e2 > s2:
                s, e = s2, e2
            out.append((int(s), int(e), float(sc), float(null)))
        return out

    def score_of(self, span_logit: float, null_logit: float) -> float:
        return _sigmoid((span_logit - null_logit) / 2.0)

    # ------------------------------------------------------------------ pipeline reader
    @staticmethod
    def sentences_of(index, hit: PassageHit) -> list[int]:
        ids = index.doc_sentences.get(hit.chunk.doc_id, [])
        starts = [index.sentences[i].start for i in ids]
        lo = bisect.bisect_left(starts, hit.chunk.start)
        hi = bisect.bisect_left(starts, hit.chunk.end)
        return ids[lo:hi]

    def windows(self, question: QuestionInfo, hits: list[PassageHit], index, question_vector) -> list[dict]:
        """Windows of consecutive sentences around the best-ranked sentences of the top passages."""
        hit_of: dict[int, PassageHit] = {}
        for hit in hits[: self.max_passages]:
            for sid in self.sentences_of(index, hit):
                hit_of.setdefault(sid, hit)
        if not hit_of:
            return []
        sids = list(hit_of)
        if question_vector is not None and getattr(index, "sentence_vectors", None) is not None:
            sem = np.asarray(index.sentence_vectors[sids] @ np.asarray(question_vector), dtype=np.float32)
        else:
            sem = np.zeros(len(sids), dtype=np.float32)
        from qa.normalize import normalize
        bigrams = question.bigrams or []
        rank_score = {}
        for j, sid in enumerate(sids):
            sent = index.sentences[sid]
            text = normalize(index.documents[sent.doc_id].text[sent.start:sent.end])
            cov = sum(1 for b in bigrams if b in text) / max(len(bigrams), 1)
            rank_score[sid] = float(sem[j]) + 0.1 * cov - 0.01 * hit_of[sid].rank
        covered: set[int] = set()
        out = []
        for sid in sorted(sids, key=lambda s: -rank_score[s]):
            if len(out) >= self.max_windows:
                break
            if sid in covered:
                continue
            doc_id = index.sentences[sid].doc_id
            lo = hi = sid

            def length(a, b):
                return index.sentences[b].end - index.sentences[a].start

            grow = True
            while grow:
                grow = False
                for cand in (lo - 1, hi + 1):   # previous sentence first, then the next
                    if cand in hit_of and cand not in covered and index.sentences[cand].doc_id == doc_id:
                        a, b = min(lo, cand), max(hi, cand)
                        if length(a, b) <= self.window_chars:
                            lo, hi = a, b
                            grow = True
            covered.update(range(lo, hi + 1))
            out.append({"doc_id": doc_id, "start": index.sentences[lo].start, "end": index.sentences[hi].end,
                        "sids": list(range(lo, hi + 1)), "best": rank_score[sid]})
        return out

    def read(self, question: QuestionInfo, hits: list[PassageHit], index, question_vector,
             idf=None) -> list[Candidate]:
        wins = self.windows(question, hits, index, question_vector)
        if not wins:
            return []
        texts = [index.documents[w["doc_id"]].text[w["start"]:w["end"]] for w in wins]
        enc, sl, el = self._run([question.text] * len(wins), texts)
        best: dict[tuple, Candidate] = {}
        for i, wi in enumerate(enc.sample):
            w = wins[wi]
            doc_text = index.documents[w["doc_id"]].text
            ctx = enc.context_mask(i)
            null = float(sl[i][0] + el[i][0])
            offs = enc.offsets[i]
            for sc, s, e in top_spans(sl[i], el[i], ctx, self.max_answer_tokens, self.spans_per_window):
                ds, de = strip_span(doc_text, w["start"] + offs[s][0], w["start"] + offs[e][1])
                if de <= ds:
                    continue
                sents = [index.sentences[x] for x in w["sids"]]
                first = next((x for x in sents if x.end > ds), sents[-1])
                last = next((x for x in reversed(sents) if x.start < de), sents[0])
                sid_first = w["sids"][sents.index(first)]
                score = self.score_of(sc, null)
                key = (w["doc_id"], ds, de)
                if key in best and best[key].score >= score:
                    continue
                best[key] = Candidate(doc_id=w["doc_id"], start=ds, end=de, text=doc_text[ds:de], score=score,
                                      kind="neural", sentence_start=first.start,
                                      sentence_end=max(last.end, first.end),
                                      passage=self._hit_for(hits, w["doc_id"], ds, sid_first, index),
                                      features={"span_logit": sc, "null_logit": null, "window_rank": w["best"]})
        out = sorted(best.values(), key=lambda c: (-c.score, c.end - c.start))
        return out

    def _hit_for(self, hits, doc_id, start, sid, index):
        for h in hits[: self.max_passages]:
            if h.chunk.doc_id == doc_id and h.chunk.start <= start < h.chunk.end:
                return h
        for h in hits[: self.max_passages]:
            if h.chunk.doc_id == doc_id:
                return h
        return None
