"""Model backends of the neural reader: the same weights on onnxruntime (default, no torch)
or on torch + transformers (bf16 where the CPU has it; what training uses).

Each is a callable ``(input_ids, attention_mask) -> (start_logits, end_logits)`` (numpy).
On onnxruntime the matrix products run in fp32 or int8 (``QA_READER_PRECISION``, see
``pick_precision``); both graphs are derived once from the shipped ``model.onnx`` and cached
under ``$QA_HOME/models/``.
``load_model(dir)`` reads the exported int8 format (``qa-reader.json``: its weights from
``model.onnx``, the one copy shipped, or from an older export's ``model.safetensors``) or a plain
transformers directory into a ``BertForQuestionAnswering`` for the torch backend and training.
"""
from __future__ import annotations

import importlib.util
import logging
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
    if (d / "config.json").exists() and _have("torch", "transformers") and (
            ((d / "model.safetensors").exists() and _have("safetensors"))
            or ((d / ONNX_FILE).exists() and _have("onnx"))):
        out.append("torch")
    return out


def shipped_model_present(model_dir: str | Path = "") -> bool:
    d = Path(model_dir) if model_dir else READER_MODEL_DIR
    return (d / "tokenizer.json").exists() and (
        (d / ONNX_FILE).exists() or ((d / "config.json").exists() and (d / "model.safetensors").exists()))


UNPACKED_VERSION = 1


def unpacked_model_path(model_dir: Path) -> Path:
    """Where the unpacked copy of ``model_dir/model.onnx`` is kept: under ``$QA_HOME/models/``,
    named by the source file's size and modification time (a new export gets a new copy)."""
    from qa.paths import qa_home
    st = (model_dir / ONNX_FILE).stat()
    return qa_home() / "models" / f"reader-unpacked-v{UNPACKED_VERSION}-{st.st_size}-{st.st_mtime_ns}.onnx"


def unpack_weights(src: Path, dst: Path) -> Path:
    """Write ``dst``: ``src`` with its weights unpacked once instead of at every call.

    The exported graph keeps each weight as int8 + per-row scales behind a ``DequantizeLinear``
    that onnxruntime runs on every call (it never folds it: it keeps quantisation patterns
    whole). Here a matrix weight becomes the fp32 values that node computed (the same values,
    so the same logits), and the word-embedding table stays int8: it is gathered first and only
    the rows the input uses are scaled (``Gather`` → ``Cast`` → ``Mul``). Measured: README
    "Performance"."""
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise ModelError("unpacking the reader model needs the onnx package (pip install onnx)") from exc
    try:
        model = onnx.load(str(src))
    except Exception as exc:          # noqa: BLE001 - onnx raises DecodeError and others
        raise ModelError(f"cannot load the reader model {src}: {exc}") from exc
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consumers: dict[str, list] = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    keep, drop_inits, new_inits = [], set(), []
    for n in g.node:
        if n.op_type != "DequantizeLinear" or not all(x in inits for x in n.input[:2]):
            keep.append(n)
            continue
        q = numpy_helper.to_array(inits[n.input[0]])
        scale = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        zero = numpy_helper.to_array(inits[n.input[2]]) if len(n.input) > 2 and n.input[2] in inits else None
        users = consumers.get(n.output[0], [])
        if zero is None and scale.ndim == 1 and axis == 0 and users and all(
                u.op_type == "Gather" and u.input[0] == n.output[0]
                and next((a.i for a in u.attribute if a.name == "axis"), 0) == 0 for u in users):
            for u in users:     # embeddings: gather the int8 rows, then scale only those
                out, ids = u.output[0], u.input[1]
                keep.remove(u) if u in keep else None
                u.op_type = "__replaced__"
                keep += [helper.make_node("Gather", [n.input[0], ids], [out + ".q8"], axis=0),
                         helper.make_node("Cast", [out + ".q8"], [out + ".q8f"], to=onnx.TensorProto.FLOAT),
                         helper.make_node("Gather", [n.input[1], ids], [out + ".s"], axis=0),
                         helper.make_node("Unsqueeze", [out + ".s", out + ".ax"], [out + ".s1"]),
                         helper.make_node("Mul", [out + ".q8f", out + ".s1"], [out])]
                new_inits.append(numpy_helper.from_array(np.array([-1], np.int64), out + ".ax"))
            continue
        shape = [1] * q.ndim
        shape[axis] = -1
        w = q.astype(np.float32)
        if zero is not None:
            w -= zero.astype(np.float32).reshape(shape if zero.ndim else ())
        w *= scale.reshape(shape if scale.ndim else ())
        new_inits.append(numpy_helper.from_array(w, n.output[0]))
        drop_inits.update(n.input[:3])
    keep = [n for n in keep if n.op_type != "__replaced__"]
    still_used = {x for n in keep for x in n.input}
    inits_out = [i for i in g.initializer if i.name not in drop_inits or i.name in still_used] + new_inits
    del g.node[:]
    g.node.extend(keep)
    del g.initializer[:]
    g.initializer.extend(inits_out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        onnx.save(model, str(tmp))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


INT8_VERSION = 1
PRECISIONS = ("fp32", "int8")
# CPUs with int8 dot-product instructions (VNNI: AVX-512 or the AVX2-encoded one); without
# them onnxruntime's int8 kernels multiply through pmaddubsw and were measured slower than fp32
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


def pick_precision(choice: str | None = None, flags: set[str] | None = None) -> str:
    """``"int8"`` or ``"fp32"``: the arithmetic of the reader's matrix products.

    ``choice`` (else ``$QA_READER_PRECISION``, else ``auto``): ``fp32``, ``int8`` or ``auto`` —
    int8 where the CPU has VNNI (``flags``: ``/proc/cpuinfo``'s), fp32 elsewhere. Measured
    (docs/performance.md, "The int8 reader"): on an AVX-512 VNNI + AMX Xeon the read step
    takes 0.60× the fp32 time inside ``answer()`` (33 vs 55 ms p50) with the same EM on the
    seed set and DRCD dev. No AVX2-only CPU was measured: there int8 was slower before, and
    u8×s8 products without VNNI may saturate, so ``auto`` keeps fp32 there."""
    raw = choice or os.environ.get("QA_READER_PRECISION") or "auto"
    value = raw.strip().lower()
    if value == "auto":
        if flags is None:
            from embeddings.onnx_encoder import cpu_flags     # one reader of /proc/cpuinfo's flags
            flags = cpu_flags()
        return "int8" if flags & VNNI_FLAGS else "fp32"
    if value not in PRECISIONS:
        raise ModelError(f"unknown reader precision {raw!r} (QA_READER_PRECISION); "
                         f"choose auto, {', '.join(PRECISIONS)}")
    return value


def int8_model_path(model_dir: Path) -> Path:
    """Where the int8-compute copy of ``model_dir/model.onnx`` is kept (beside the unpacked one,
    named by the source file's size and modification time, and the recipe's version)."""
    from qa.paths import qa_home
    st = (model_dir / ONNX_FILE).stat()
    return qa_home() / "models" / f"reader-int8-v{INT8_VERSION}-{st.st_size}-{st.st_mtime_ns}.onnx"


def build_int8(model_dir: Path, dst: Path) -> Path:
    """Write ``dst`` (``int8_model_path``) from the unpacked fp32 copy (``int8.quantize_graph``),
    writing that copy first where it is missing or does not load."""
    from qa.read.neural import int8
    src = unpacked_model_path(model_dir)
    if src.exists():
        try:
            return int8.quantize_graph(src, dst)
        except ModelError:
            raise
        except Exception:   # noqa: BLE001 - a damaged unpacked copy: written again below
            pass
    unpack_weights(model_dir / ONNX_FILE, src)
    return int8.quantize_graph(src, dst)


class OnnxSpanModel:
    """``model.onnx`` on onnxruntime's CPU provider: (ids, mask) -> (start, end) logits.

    Runs a copy derived once from the shipped file and cached under ``$QA_HOME/models/``:
    ``int8`` (``int8.quantize_graph``; first use ~2 s with the unpack) or ``fp32`` (``unpack_weights``: the weights
    unpacked once; ~1 s), as ``pick_precision`` chooses. A cached copy that does not load is
    written again; where the int8 copy cannot be built the fp32 one runs (``precision`` says
    which runs, ``fallback`` why), and where no copy can be written, the shipped file."""
    backend = "onnx"

    def __init__(self, model_dir: Path, threads: int | None = None, precision: str | None = None):
        import onnxruntime as ort
        from embeddings.onnx_encoder import physical_cores
        self.requested = pick_precision(precision)
        so = ort.SessionOptions()
        # one thread per physical core: hyper-thread siblings share the core's vector units
        so.intra_op_num_threads = threads or min(physical_cores(), 8)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        if os.environ.get("QA_ORT_SPIN", "0") != "1":
            # no busy-waiting between runs: on 2 shared cores spinning threads starve the
            # encoder and other processes (measured: see docs/performance.md)
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._ort, self._so = ort, so
        shipped = model_dir / ONNX_FILE
        self.precision, self.model_path, self.fallback = "fp32", shipped, ""
        unpack = os.environ.get("QA_READER_UNPACK", "1") != "0" and shipped.exists()
        if unpack and self.requested == "int8":
            try:
                self.model_path = int8_model_path(model_dir)
                self.session = self._open_cached(self.model_path, lambda p: build_int8(model_dir, p))
                self.precision = "int8"
                return
            except Exception as exc:    # noqa: BLE001 - any failure here leaves the fp32 graph to answer
                self.fallback = f"the int8 reader could not be built ({exc.__class__.__name__}: {exc}); fp32 runs"
                logging.getLogger("qa.reader").warning("%s", self.fallback)
        if unpack:
            try:
                self.model_path = unpacked_model_path(model_dir)
                self.session = self._open_cached(self.model_path, lambda p: unpack_weights(shipped, p))
                return
            except OSError:
                pass                        # read-only home: the packed file still answers
            except ModelError:
                raise
            except Exception as exc:        # noqa: BLE001 - onnxruntime raises its own exception types
                raise ModelError(f"cannot load the reader model {shipped}: {exc}") from exc
        self.model_path = shipped
        try:
            self.session = ort.InferenceSession(str(shipped), so, providers=["CPUExecutionProvider"])
        except Exception as exc:          # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"cannot load the reader model {shipped}: {exc}") from exc

    def _open_cached(self, path: Path, build):
        """A session on the cached graph ``path``, written by ``build(path)`` when missing and
        written again, once, when it does not load (a damaged or truncated file)."""
        for attempt in (0, 1):
            if attempt or not path.exists():
                build(path)
            try:
                return self._ort.InferenceSession(str(path), self._so, providers=["CPUExecutionProvider"])
            except Exception:               # noqa: BLE001 - onnxruntime raises its own exception types
                if attempt:
                    raise
                path.unlink(missing_ok=True)

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


def state_from_onnx(path: Path) -> dict:
    """The torch state dict that ``model.onnx`` computes with, read back from the graph.

    Named initializers (biases, LayerNorm, embedding tables) keep their parameter names under the
    tracing wrapper's ``m.`` prefix; a weight matrix is anonymous (``onnx::MatMul_N``, stored
    ``[in, out]`` as int8 + per-column scales) and takes its name from the bias added to its
    product (``….bias`` → ``….weight``, transposed). The values are the int8 values and scales
    the export wrote, so the state equals the exported one's."""
    import onnx
    from onnx import numpy_helper
    import torch
    graph = onnx.load(str(path)).graph
    raw = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    values: dict[str, np.ndarray] = {}
    for n in graph.node:                     # DequantizeLinear(q8, scale) -> the weight's own name
        if n.op_type == "DequantizeLinear" and n.input[0] in raw:
            q, scale = raw[n.input[0]].astype(np.float32), raw[n.input[1]]
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            values[n.output[0]] = q * (scale[None, :] if axis == 1 else scale[:, None])
    values.update({k: v for k, v in raw.items() if not k.endswith(("_q8", "_scale"))})
    produced_by = {o: n for n in graph.node for o in n.output}
    state = {}
    for n in graph.node:
        if n.op_type != "Add":
            continue
        bias = next((x for x in n.input if x.startswith("m.") and x.endswith(".bias")), None)
        other = next((x for x in n.input if x != bias), None)
        mm = produced_by.get(other)
        if bias is None or mm is None or mm.op_type != "MatMul":
            continue
        weight = next((x for x in mm.input if x in values and values[x].ndim == 2), None)
        if weight is not None:
            state[bias[2:-5] + ".weight"] = np.ascontiguousarray(values[weight].T)
    for k, v in values.items():
        if k.startswith("m."):
            state[k[2:]] = v
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}


def load_model(model_dir: str | Path):
    """A ``BertForQuestionAnswering`` from an exported (int8) or a plain transformers directory.

    An exported directory's weights are read from ``model.safetensors`` where it is there, else
    from ``model.onnx`` (the shipped form: one copy of the weights, see ``state_from_onnx``)."""
    from transformers import BertConfig, BertForQuestionAnswering
    d = Path(model_dir)
    if not (d / META_FILE).exists():
        from transformers import AutoModelForQuestionAnswering
        return AutoModelForQuestionAnswering.from_pretrained(str(d), local_files_only=True)
    config = BertConfig.from_json_file(str(d / "config.json"))
    model = BertForQuestionAnswering(config, add_pooling_layer=False) \
        if "add_pooling_layer" in BertForQuestionAnswering.__init__.__code__.co_varnames else BertForQuestionAnswering(config)
    if (d / "model.safetensors").exists():
        from safetensors.torch import load_file
        state = dequantize_state(load_file(str(d / "model.safetensors")))
    else:
        state = state_from_onnx(d / ONNX_FILE)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("bert.pooler.") and not k.endswith("_ids")]
    if missing or unexpected:
        raise RuntimeError(f"reader model in {d}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.eval()
    return model
