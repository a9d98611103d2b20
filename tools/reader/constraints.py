"""How often each of the combined reader's conflicts would hold back a right answer.

``python -m tools.reader.constraints [--sets cmrc2018_train,drcd_test,…]``

The combined reader never answers with a span that contradicts the question
(``CombinedReader._constraints_checked``): a year its sentence does not give, a role it does not
name, a count of other things, a figure of another dimension, a place its document never names.
For each public *training* set this counts, per conflict, the answerable questions it applies to
and how many of their gold answers it would contradict (a right answer withheld), and for the
place conflict also the unanswerable questions it would catch. Each article (title and every
paragraph) is one document, as a report is one file. Measuring only: validation sets, the seeds
and the seed evaluation set are not read.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from qa.question import analyze_question
from qa.read.candidates import (asked_roles, dimension_conflict, figure_absent,
                                measure_conflict, place_absent, role_conflict, year_evidence)
from qa.text.chunking import split_sentences
from qa.text.normalize import normalize
from tools.reader.suite import DATA

TRAINING_SETS = ("cmrc2018_train", "drcd_test", "antiterror_train", "cail2019_train_partial", "cail2019_test",
                 "dureader_checklist_train", "squad2_zh_dev", "chinese_squad11_dev_zh_noXQuAD")
RULES = ("year", "role", "measure", "dimension", "figure", "place")


def gold_sentence(sentences: list[tuple[int, int]], start: int) -> tuple[int, int]:
    return next(((s, e) for s, e in sentences if s <= start < e), (start, start + 1))


def count(name: str) -> tuple[Counter, Counter, list]:
    """(questions each rule applies to, gold answers it contradicts, examples) for one set;
    keys ``rule`` for answerable questions, ``rule/unanswerable`` for the others."""
    data = json.loads((DATA / f"{name}.json").read_text("utf-8"))
    applies, fires, examples = Counter(), Counter(), []
    for article in data["data"]:
        document = normalize((article.get("title") or "") + "\n" +
                             "\n".join(p["context"] for p in article["paragraphs"]))
        for paragraph in article["paragraphs"]:
            context = normalize(paragraph["context"])
            sentences = split_sentences(context)
            for q in paragraph["qas"]:
                question = analyze_question(normalize(q["question"]))
                answerable = bool(q.get("answers")) and not q.get("is_impossible")
                if not answerable:
                    if question.places:
                        applies["place/unanswerable"] += 1
                        fires["place/unanswerable"] += place_absent(question.places, document)
                    continue
                gold = q["answers"][0]
                start = gold.get("answer_start", -1)
                span = normalize(gold["text"])
                s, e = gold_sentence(sentences, start) if start >= 0 else (0, len(context))
                roles = asked_roles(question.normalized) if question.kind in ("person", "role") else frozenset()
                checks = {
                    "year": (question.years, lambda: year_evidence(question.years, context, s, e)[1]),
                    "role": (roles and start >= 0, lambda: role_conflict(roles, context, s, e, start)),
                    "measure": (question.unit, lambda: measure_conflict(question.unit, span)),
                    "dimension": (question.dimension,
                                  lambda: dimension_conflict(question.dimension, span, question.kind)),
                    "figure": (question.figure, lambda: figure_absent(question.figure, span)),
                    "place": (question.places, lambda: place_absent(question.places, document)),
                }
                for rule, (applicable, fired) in checks.items():
                    if not applicable:
                        continue
                    applies[rule] += 1
                    if fired():
                        fires[rule] += 1
                        examples.append((name, rule, q["question"], gold["text"]))
    return applies, fires, examples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.reader.constraints", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default=",".join(TRAINING_SETS), help="public training sets, comma-separated")
    ap.add_argument("--examples", type=int, default=10, help="right answers withheld to print")
    args = ap.parse_args(argv)
    total_applies, total_fires, examples = Counter(), Counter(), []
    print("| set | " + " | ".join(RULES) + " | place, unanswerable |")
    print("|---|" + "---:|" * (len(RULES) + 1))
    for name in args.sets.split(","):
        if not (DATA / f"{name}.json").exists():
            print(f"{name}: not in {DATA}", file=sys.stderr)
            continue
        applies, fires, ex = count(name)
        total_applies.update(applies); total_fires.update(fires); examples += ex
        cells = [f"{fires[r]} / {applies[r]}" for r in RULES + ("place/unanswerable",)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    cells = [f"**{total_fires[r]} / {total_applies[r]}**" for r in RULES + ("place/unanswerable",)]
    print("| all | " + " | ".join(cells) + " |")
    print("\ncells: questions whose gold answer the conflict contradicts / questions it applies to "
          "(the last column: unanswerable questions it catches / unanswerable questions naming a place)")
    for name, rule, question, gold in examples[:args.examples]:
        print(f"  {rule}: {name}: {question} → gold {gold}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
