"""A damaged, foreign, stale or half-written index is detected, never used.

Outcome: ``load_index``/``Pipeline.load`` raise ``IndexError_`` whose message names
the command that fixes it (``qa ask --index DIR`` exits 4 with that one line),
and running that command gives a working index again; or the index is put back
automatically (a writer killed between its two renames). Never a traceback, never
a wrong answer. Also: SIGKILL at random moments and at every step of the atomic
write, and two concurrent ``qa index`` runs on one directory.
"""
from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from embeddings.encoders import get_encoder
from qa.index.store import FILES, load_index
from qa.text.chunking import ChunkSpec
from qa.cli import main as qa_main
from qa.errors import IndexError_
from qa.index.build import check_fresh
from qa.pipeline import Pipeline

DAMAGES = ("truncate_half", "truncate_empty", "flip_bytes", "delete")


def damage(path: Path, how: str, at: float = 0.5) -> None:
    if how == "delete":
        path.unlink()
        return
    data = bytearray(path.read_bytes())
    if how == "truncate_half":
        data = data[:len(data) // 2]
    elif how == "truncate_empty":
        data = bytearray()
    elif how == "flip_bytes":
        i = min(int(len(data) * at), len(data) - 4)
        for j in range(i, i + 4):
            data[j] ^= 0xFF
    path.write_bytes(bytes(data))


def load_error(index_dir: Path) -> str:
    """The IndexError_ message of loading ``index_dir`` as the pipeline does."""
    with pytest.raises(IndexError_) as err:
        Pipeline.load(index_dir)
    msg = str(err.value)
    assert "\n" not in msg and "qa index" in msg, msg
    return msg


def fixing_command(msg: str) -> list[str]:
    """The ``qa index …`` command a message names, as argv for ``qa.cli.main``."""
    m = re.search(r"(qa index[^;()]*)", msg)
    assert m, msg
    return shlex.split(m.group(1).strip())[1:]


def same_answers(pipe, tiny_qa, check_citations):
    for question, expected in tiny_qa:
        a = pipe.answer(question)
        assert a.text == expected, question
        check_citations(a, pipe.index.documents)


def ask_exit_code(capsys, index_dir: Path, question: str = "星河市2023年地区生产总值是多少") -> tuple[int, str]:
    capsys.readouterr()
    rc = qa_main(["ask", "--index", str(index_dir), question])
    err = capsys.readouterr().err
    return rc, err


# --- damaged files ---------------------------------------------------------------

@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", FILES)
def test_damaged_file_is_detected_with_the_fix(name, how, tiny_index_copy, capsys):
    damage(tiny_index_copy / name, how)
    msg = load_error(tiny_index_copy)
    with pytest.raises(IndexError_):
        load_index(tiny_index_copy)
    rc, err = ask_exit_code(capsys, tiny_index_copy)
    assert rc == 4
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"qa: {msg}"


@pytest.mark.parametrize("name, how", [("documents.json", "truncate_half"), ("sentences.npy", "flip_bytes"),
                                       ("chunks.faiss", "delete")])
def test_the_named_command_repairs_the_index(name, how, tiny_index_copy, tiny_qa, check_citations, capsys):
    damage(tiny_index_copy / name, how)
    argv = fixing_command(load_error(tiny_index_copy))
    assert qa_main(argv) == 0, capsys.readouterr().err
    same_answers(Pipeline.load(tiny_index_copy), tiny_qa, check_citations)


@pytest.mark.parametrize("how", ["flip_bytes", "delete"])
def test_a_lost_manifest_names_the_command_and_the_paths_it_needs(how, tiny_index_copy, tiny_corpus, tiny_qa,
                                                                   check_citations, capsys):
    """The manifest holds the collection's sources: without it, the fix needs them again."""
    damage(tiny_index_copy / "manifest.json", how)
    msg = load_error(tiny_index_copy)
    argv = fixing_command(msg)
    if any(a.isupper() and a.endswith("…") for a in argv):       # a PATH… placeholder
        argv = [a for a in argv if not (a.isupper() and a.endswith("…"))] + [str(tiny_corpus)]
    assert qa_main(argv) == 0, capsys.readouterr().err
    same_answers(Pipeline.load(tiny_index_copy), tiny_qa, check_citations)


def test_flipped_manifest_bytes_anywhere_are_detected_or_harmless(tiny_index, tiny_index_copy, tiny_qa,
                                                                  check_citations):
    """The manifest is the one file without a checksum: a flip either breaks it
    (detected) or lands where it cannot change an answer."""
    original = (tiny_index / "manifest.json").read_bytes()
    path = tiny_index_copy / "manifest.json"
    outcomes = {"detected": 0, "harmless": 0}
    for pos in range(0, len(original), max(1, len(original) // 25)):
        for width in (1, 2):
            data = bytearray(original)
            for j in range(pos, min(pos + width, len(data))):
                data[j] ^= 0xFF
            path.write_bytes(bytes(data))
            try:
                pipe = Pipeline.load(tiny_index_copy)
            except IndexError_ as e:
                assert "qa index" in str(e)
                outcomes["detected"] += 1
                continue
            same_answers(pipe, tiny_qa, check_citations)
            outcomes["harmless"] += 1
    assert outcomes["detected"] > 0


def _edit_manifest(index_dir: Path, **changes):
    path = index_dir / "manifest.json"
    m = json.loads(path.read_text(encoding="utf-8"))
    for k, v in changes.items():
        if v is None:
            m.pop(k, None)
        else:
            m[k] = v
    path.write_text(json.dumps(m), encoding="utf-8")


@pytest.mark.parametrize("changes, says", [
    ({"encoder_id": "st:BAAI/bge-small-zh-v1.5", "encoder_family": "st:BAAI/bge-small-zh-v1.5"}, "encoder"),
    ({"encoder_id": "st:BAAI/bge-small-zh-v1.5", "encoder_family": None}, "encoder"),
    ({"encoder_dim": 768}, "inconsistent"),
    ({"format_version": 2}, "format"),
    ({"format_version": None}, "format"),
    ({"chunking": {"max_chars": 500, "overlap_sentences": 1, "max_sentence": 200}}, "chunking"),
    ({"checksums": None}, "checksum"),
])
def test_foreign_or_stale_manifest_is_detected(changes, says, tiny_index_copy, capsys):
    _edit_manifest(tiny_index_copy, **changes)
    assert says in load_error(tiny_index_copy)
    assert ask_exit_code(capsys, tiny_index_copy)[0] == 4


@pytest.mark.parametrize("content", [b"[]", b"null", b"\"manifest\"", b"{}", b"\xff\xfe{\x00}\x00",
                                     b"{\"format_version\": 1}"])
def test_manifest_that_is_not_a_manifest(content, tiny_index_copy, capsys):
    (tiny_index_copy / "manifest.json").write_bytes(content)
    load_error(tiny_index_copy)
    assert ask_exit_code(capsys, tiny_index_copy)[0] == 4


def test_the_foreign_encoder_fix_works(tiny_index_copy, tiny_qa, check_citations, capsys):
    _edit_manifest(tiny_index_copy, encoder_id="st:some-other-model", encoder_family="st:some-other-model")
    assert qa_main(fixing_command(load_error(tiny_index_copy))) == 0, capsys.readouterr().err
    same_answers(Pipeline.load(tiny_index_copy), tiny_qa, check_citations)


def test_check_fresh_rejects_other_chunking(tiny_index):
    with pytest.raises(IndexError_, match="qa index"):
        check_fresh(tiny_index, Pipeline.load(tiny_index).encoder.encoder_id, ChunkSpec(max_chars=100))


@pytest.mark.parametrize("setup", ["missing_dir", "empty_dir", "a_file", "damaged_npy", "foreign_encoder"])
def test_cli_exit_4_without_traceback(setup, tmp_path, tiny_index, qa_cli):
    d = tmp_path / "index"
    if setup == "empty_dir":
        d.mkdir()
    elif setup == "a_file":
        d.write_text("not an index", encoding="utf-8")
    elif setup != "missing_dir":
        shutil.copytree(tiny_index, d)
        if setup == "damaged_npy":
            damage(d / "sentences.npy", "flip_bytes", at=0.9)
        else:
            _edit_manifest(d, encoder_id="st:other", encoder_family="st:other")
    r = qa_cli("ask", "--index", str(d), "星河市2023年地区生产总值是多少")
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa: ") and "qa index" in lines[0]


# --- files deleted from under it ---------------------------------------------------

def test_index_deleted_while_loaded_keeps_answering(tiny_index_copy, tiny_qa, check_citations):
    pipe = Pipeline.load(tiny_index_copy)
    shutil.rmtree(tiny_index_copy)
    same_answers(pipe, tiny_qa, check_citations)        # everything is in memory
    assert "no index" in load_error(tiny_index_copy)


def test_file_deleted_while_loaded_is_caught_at_next_load(tiny_index_copy, tiny_qa, check_citations):
    pipe = Pipeline.load(tiny_index_copy)
    for name in ("documents.json", "chunks.faiss"):
        (tiny_index_copy / name).unlink()
        same_answers(pipe, tiny_qa[:1], check_citations)
        load_error(tiny_index_copy)


def test_source_file_deleted_then_update_drops_it(tmp_path, write_corpus, build_index, tiny_qa, check_citations,
                                                  capsys):
    corpus = write_corpus(tmp_path / "corpus")
    index = build_index([corpus], tmp_path / "index")
    (corpus / "xinghe.txt").unlink()
    assert qa_main(["index", "--index", str(index), "--quiet"]) == 0, capsys.readouterr().err
    pipe = Pipeline.load(index)
    assert not any(d.endswith("xinghe.txt") for d in pipe.index.documents)
    a = pipe.answer(tiny_qa[0][0])
    assert a.text != tiny_qa[0][1]
    check_citations(a, pipe.index.documents)
    same_answers(pipe, tiny_qa[1:], check_citations)            # the others are still answered


def test_whole_source_folder_deleted(tmp_path, write_corpus, build_index, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    index = build_index([corpus], tmp_path / "index")
    shutil.rmtree(corpus)
    rc = qa_main(["index", "--index", str(index)])
    err = capsys.readouterr().err
    assert rc == 3 and "nothing to index" in err     # clear message, and the old index is untouched
    Pipeline.load(index)


# --- the default collection (seeds + the user's files) ------------------------------

SEED_DOC_TEXT = "金沙镇概况\n金沙镇2020年常住人口为4.2万人，是全省重点中心镇。\n"
SEED_QA = ("金沙镇2020年常住人口是多少", "4.2万人")     # the figure with what it counts (not cut at 万)


@pytest.fixture
def default_collection(tmp_path, monkeypatch, tiny_corpus, capsys):
    """A default collection under a private QA_HOME, with one small stand-in 'seed'
    document (encoding the real seeds takes a minute) plus the tiny corpus."""
    import qa.index.collection
    import qa.paths
    from qa.types import Document
    seeds = [Document(doc_id="seed.txt", title="金沙镇概况", text=SEED_DOC_TEXT)]
    import qa.api
    monkeypatch.setattr(qa.index.collection, "load_seeds", lambda: list(seeds))
    monkeypatch.setattr(qa.api, "_PIPELINES", {})
    monkeypatch.setenv("QA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QA_INDEX", raising=False)
    assert qa_main(["index", str(tiny_corpus), "--quiet"]) == 0, capsys.readouterr().err
    return qa.paths.default_index_dir()


def _ask_default(capsys, question):
    import qa.api
    qa.api._PIPELINES.clear()
    capsys.readouterr()
    rc = qa_main(["ask", "--json", question])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else None), err


def test_default_collection_damaged_then_repaired_by_the_named_command(default_collection, tiny_qa, capsys):
    damage(default_collection / "chunks.json", "truncate_half")
    rc, _, err = _ask_default(capsys, SEED_QA[0])
    assert rc == 4 and "qa index" in err
    argv = fixing_command(err.strip().removeprefix("qa: "))
    assert qa_main(argv) == 0, capsys.readouterr().err
    for question, expected in [SEED_QA, *tiny_qa]:        # the seeds and the user's files: nothing lost
        rc, d, err = _ask_default(capsys, question)
        assert rc == 0 and d["text"] == expected, (question, d, err)


def test_default_collection_writer_killed_between_renames(default_collection, tiny_qa, capsys):
    """The state a SIGKILL between the two renames leaves: the index is put back,
    not silently replaced by the seeds alone."""
    os.replace(default_collection, default_collection.parent / f".{default_collection.name}.old-1-2")
    rc, d, err = _ask_default(capsys, tiny_qa[0][0])
    assert rc == 0 and d["text"] == tiny_qa[0][1], (d, err)
    assert default_collection.is_dir()


def test_collection_writer_killed_between_renames_then_updated(tmp_path, write_corpus, build_index, tiny_qa,
                                                              check_citations, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    index = build_index([corpus], tmp_path / "index")
    os.replace(index, tmp_path / ".index.old-1-2")
    assert qa_main(["index", "--index", str(index), "--quiet"]) == 0, capsys.readouterr().err  # no paths: its sources
    same_answers(Pipeline.load(index), tiny_qa, check_citations)
    assert not list(tmp_path.glob(".index.old-*"))


# --- SIGKILL: random moments, and every step of the atomic write ----------------------

def _xinghe(version: int) -> str:
    return f"星河市概况\n星河市位于东海之滨，是一座港口城市。2023年，星河市地区生产总值达到{1000 + version}亿元，同比增长6.5%。\n"


def _index_state(index_dir: Path):
    """``("ok", {doc name: text})`` if the index loads, else ``("error", message)``."""
    try:
        data = check_fresh(index_dir, get_encoder().encoder_id, ChunkSpec())
    except IndexError_ as e:
        assert "qa index" in str(e)
        return "error", str(e)
    for c in data.chunks:                                   # complete and self-consistent
        assert data.documents[c.doc_id].text[c.start:c.end] == c.text
    assert data.chunk_index.ntotal == len(data.chunks) and len(data.sentence_vectors) == len(data.sentences)
    return "ok", {Path(k).name: d.text for k, d in data.documents.items()}


def _corpus_texts(corpus: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in corpus.iterdir()}


def _check_after_kill(index_dir: Path, corpus: Path, old: dict, new: dict, version: int,
                      rerun: bool = True) -> str:
    """After a killed ``qa index``: the index loads and is complete (old or new
    version, with the right answer), or a rerun of ``qa index`` repairs it."""
    state, texts = _index_state(index_dir)
    if state == "ok":
        assert texts in (old, new), "the index holds neither the old nor the new version"
        amount = "%d亿元" % (1000 + version if texts == new else int(re.search(r"(\d+)亿元", old["xinghe.txt"])[1]))
        a = Pipeline.load(index_dir).answer("星河市2023年地区生产总值是多少")
        assert a.text == amount
        outcome = "new" if texts == new and texts != old else "old"
    else:
        outcome = "error"
    if rerun or outcome == "error":
        assert qa_main(["index", "--index", str(index_dir), str(corpus), "--quiet"]) == 0
        assert _index_state(index_dir) == ("ok", new)
    return outcome


@pytest.fixture
def kill_setup(tmp_path, write_corpus, build_index):
    corpus = write_corpus(tmp_path / "corpus")
    index = build_index([corpus], tmp_path / "index")
    return corpus, index


def test_sigkill_at_random_moments(kill_setup, qa_cli, capsys):
    corpus, index = kill_setup
    rng = random.Random(int(os.environ.get("QA_KILL_SEED", "6")))
    # How long an unkilled run takes, to spread the kills over it (and past its end).
    (corpus / "xinghe.txt").write_text(_xinghe(0), encoding="utf-8")
    t0 = time.monotonic()
    assert qa_cli("index", "--index", str(index), str(corpus), "--quiet").returncode == 0
    full = time.monotonic() - t0
    outcomes = []
    for trial in range(1, 9):
        old = _corpus_texts(corpus)
        (corpus / "xinghe.txt").write_text(_xinghe(trial), encoding="utf-8")
        new = _corpus_texts(corpus)
        delay = rng.uniform(0.3 * full, 1.1 * full)
        p = subprocess.Popen([sys.executable, "-m", "qa", "index", "--index", str(index), str(corpus), "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
        _, err = p.communicate()
        assert b"Traceback" not in err
        outcomes.append(_check_after_kill(index, corpus, old, new, trial, rerun=False))
        if outcomes[-1] == "old":       # the next trial's "old" is what the index holds
            (corpus / "xinghe.txt").write_text(old["xinghe.txt"], encoding="utf-8")
    with capsys.disabled():
        print(f"\n  SIGKILL outcomes (old/new version, or error → repaired by a rerun): {outcomes}")
    assert qa_main(["index", "--index", str(index), str(corpus), "--quiet"]) == 0
    assert not list(index.parent.glob(".index.new-*")) and not list(index.parent.glob(".index.old-*"))


# The child runs `qa index` and SIGKILLs itself at the n-th call of one of the
# steps of the atomic write (``kill_at`` = "name:n").
_CHILD = textwrap.dedent("""
    import os, shutil, signal, sys
    import faiss
    import qa
    from qa.cli import main
    name, n = sys.argv[1].split(":"); n = int(n)
    calls = {}
    def hook(label, fn, partial=False):
        def wrapped(*a, **k):
            calls[label] = calls.get(label, 0) + 1
            if label == name and calls[label] == n:
                if partial:                      # remove part of the tree, then die
                    for p in sorted(os.listdir(a[0]))[:3]:
                        p = os.path.join(a[0], p)
                        os.remove(p) if os.path.isfile(p) else None
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*a, **k)
        return wrapped
    faiss.write_index = hook("write_index", faiss.write_index)
    os.fsync = hook("fsync", os.fsync)
    os.replace = hook("replace", os.replace)
    shutil.rmtree = hook("rmtree", shutil.rmtree, partial=False)
    shutil.rmtree = hook("rmtree_partial", shutil.rmtree, partial=True)
    sys.exit(main(sys.argv[2:]))
""")

KILL_POINTS = {
    "while_writing": "write_index:1",       # new files half written
    "before_fsync": "fsync:1",              # all written, manifest included
    "before_swap": "replace:1",             # complete new directory beside the old
    "between_renames": "replace:2",         # old moved aside, new not yet in place
    "before_cleanup": "rmtree:1",           # new in place, old still beside it
    "during_cleanup": "rmtree_partial:1",   # old half deleted
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_each_step_of_the_write(point, kill_setup, qa_cli, capsys):
    corpus, index = kill_setup
    old = _corpus_texts(corpus)
    (corpus / "xinghe.txt").write_text(_xinghe(7), encoding="utf-8")
    new = _corpus_texts(corpus)
    r = subprocess.run([sys.executable, "-c", _CHILD, KILL_POINTS[point], "index", "--index", str(index),
                        str(corpus), "--quiet"], capture_output=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr.decode(errors="replace")
    if point == "between_renames":
        # the next update with no paths still knows the collection's sources
        assert qa_main(["index", "--index", str(index), "--quiet"]) == 0, capsys.readouterr().err
        assert _index_state(index) == ("ok", new)
        return
    outcome = _check_after_kill(index, corpus, old, new, 7)
    assert outcome == ("new" if point in ("before_cleanup", "during_cleanup") else "old")
    assert not list(index.parent.glob(".index.new-*")) and not list(index.parent.glob(".index.old-*"))


# --- a reader and a writer at once ----------------------------------------------------------

def test_a_reader_racing_a_writer_gets_one_whole_version(kill_setup, monkeypatch):
    """A writer swaps in a new version after the reader read the manifest and
    before it read the other files: the reader reads again, it does not call the
    index damaged (nor mix versions)."""
    import qa.index.store as store
    from qa.index.collection import update_collection
    corpus, index = kill_setup
    real, raced = store.read_manifest, []

    def read_manifest_then_a_writer_swaps(d):
        m = real(d)
        if not raced:
            raced.append(True)
            (corpus / "xinghe.txt").write_text(_xinghe(3), encoding="utf-8")
            update_collection(index, [str(corpus)], seeds=False)
        return m

    monkeypatch.setattr(store, "read_manifest", read_manifest_then_a_writer_swaps)
    data = load_index(index)
    assert raced
    assert {Path(k).name: d.text for k, d in data.documents.items()} == _corpus_texts(corpus)
    assert data.manifest["checksums"] == real(index)["checksums"]


# --- two writers at once ----------------------------------------------------------------

def test_two_concurrent_index_runs_do_not_corrupt_or_lose_each_other(tmp_path, tiny_docs, write_corpus):
    docs = list(tiny_docs.items())
    a = write_corpus(tmp_path / "a", dict(docs[:2]))
    b = write_corpus(tmp_path / "b", dict(docs[2:]))
    index = tmp_path / "index"
    procs = [subprocess.Popen([sys.executable, "-m", "qa", "index", "--index", str(index), str(src), "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for src in (a, b)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0 and b"Traceback" not in err, err
    state, texts = _index_state(index)
    assert state == "ok" and texts == dict(docs), "a concurrent update was lost"
    # and the same directory again, both at once, same paths
    procs = [subprocess.Popen([sys.executable, "-m", "qa", "index", "--index", str(index), "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0 and b"Traceback" not in err, err
    assert _index_state(index) == ("ok", dict(docs))
