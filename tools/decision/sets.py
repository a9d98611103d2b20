"""The public question sets the answer decision is fitted on and measured on.

Fitting (``FIT_SETS``): questions the neural reader never trained on —
translated SQuAD 1.1 dev questions outside the reader's training run, the SQuAD 2.0-zh
unanswerables the training run left out, and the medicine set — and, because those are
mostly translated Wikipedia text, samples of the reader's native-Chinese training sets
(Wikipedia, news, legal, web with near-miss unanswerables). Whether the reader's greater
confidence on text it trained on makes the decision overconfident is measured, not assumed:
the validation sets show it. Measuring (``CHECK_SETS``):
the four validation sets (Wikipedia, news, legal, web), never used to fit anything.
The seeds and the seed evaluation set are never read here.

Each set becomes a small collection (a subset of its paragraphs, written as a SQuAD file
under ``WORK/subsets``) that ``qa eval``'s indexer indexes once; its questions are then
asked against the whole collection, as a user asks about a folder of documents.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from qa.paths import REPO

DATA = REPO.parent / "shared" / "data"

# name: (file, paragraphs kept, which questions, role)
FIT_SETS = {
    # never seen by the reader
    "squad11": ("chinese_squad11_dev_zh_noXQuAD.json", 450, "unused", "fit"),
    "squad2-unans": ("squad2_zh_dev.json", 350, "unused", "fit"),
    "tcm": ("tcm_litdata_mtcmb.json", 100, "all", "fit"),
    # native Chinese in every domain, from the reader's training sets (cmrc2018_trial is not
    # here: its gold answers are whole sentences, so a right short span is labelled wrong)
    "drcd-train": ("drcd_train_subset1960.json", 300, "all", "fit"),
    "antiterror-train": ("antiterror_train.json", 80, "all", "fit"),
    "cail-train": ("cail2019_train_partial.json", 80, "all", "fit"),
    "dureader-checklist": ("dureader_checklist_train.json", 400, "all", "fit"),
}
CHECK_SETS = {
    "drcd-dev": ("drcd_dev.json", 120, "all", "check"),
    "antiterror-dev": ("antiterror_dev.json", 80, "all", "check"),
    "cail-dev": ("cail2019_dev.json", 100, "all", "check"),
    "dureader-dev": ("dureader_robust_dev.json", 300, "all", "check"),
}
ALL_SETS = {**FIT_SETS, **CHECK_SETS}
# translated text: its gold spans often do not match the Chinese text's own phrasing (F1 < 0.8
# for a right answer), so it teaches the ranker which span, not the judge how sure
RANKER_ONLY = {"squad11"}


def reader_training_ids() -> set[str]:
    from tools.reader.train import TRAIN_FILES_V2, training_examples
    return {e["id"] for e in training_examples(DATA, 3000, 13, None, TRAIN_FILES_V2)}


def write_subset(name: str, out_dir: Path, used: set[str] | None = None) -> Path:
    """A SQuAD file of ``name``'s kept paragraphs (and kept questions), deterministic."""
    file, n_paragraphs, which, _ = ALL_SETS[name]
    out = out_dir / f"{name}.json"
    if out.exists():
        return out
    data = json.loads((DATA / file).read_text(encoding="utf-8"))
    paragraphs = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            qas = para["qas"]
            if which == "unused":
                qas = [q for q in qas if str(q["id"]) not in used]
                if name == "squad2-unans":
                    qas = [q for q in qas if q.get("is_impossible")]
            if qas:
                paragraphs.append((article.get("title", ""), dict(para, qas=qas)))
    random.Random(7).shuffle(paragraphs)
    kept = paragraphs[:n_paragraphs]
    out_dir.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"data": [{"title": t, "paragraphs": [p]} for t, p in kept]},
                              ensure_ascii=False), encoding="utf-8")
    return out
