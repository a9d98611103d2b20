"""Faults around the index folder (issue 17, items 1–5 and the lock message of 10).

* ``--index`` naming something that is not an index (a folder of other files, a file, a
  folder holding the sources) is refused with exit 2 before anything is written, moved
  or deleted; messages suggest a command only when running it is safe;
* the embedding cache is verified (checksums, structure, shape, keys, finite unit
  vectors); a damaged one is dropped with a warning and never reaches a new index;
* a symlinked ``--index`` is written through (one lock, one folder), a dangling one
  creates its target;
* a source that reads empty where it had text keeps its previous version;
* a full disk gives one line and exit 6, the old index intact;
* a writer waiting on another's lock says so.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from qa.cli import main as qa_main
from qa.errors import IndexError_, UsageError
from qa.index.store import index_dir_state, load_index, save_index, write_lock
from qa.paths import PREBUILT_SEEDS_INDEX
from qa.pipeline import Pipeline

QUESTION, ANSWER = "星河市2023年地区生产总值是多少", "1520亿元"
NEW_DOC = "紫金港概况\n紫金港位于西溪之畔。2022年，紫金港共接待游客350万人次。\n"
ROOT = Path(__file__).resolve().parents[1]


def tree(folder: Path) -> dict[str, bytes | None]:
    """Everything under ``folder`` (and ``folder``'s own siblings' names), bytes of files."""
    out: dict[str, bytes | None] = {}
    for p in sorted(folder.rglob("*")):
        out[str(p.relative_to(folder))] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return out


def run_index(capsys, *argv) -> tuple[int, str]:
    rc = qa_main(["index", *map(str, argv), "--quiet"])
    return rc, capsys.readouterr().err


def run_ask(capsys, index, question=QUESTION) -> tuple[int, str, str]:
    rc = qa_main(["ask", "--index", str(index), question])
    out = capsys.readouterr()
    return rc, out.out, out.err


# --- 1. --index on something that is not an index --------------------------------------

@pytest.fixture
def src(tmp_path, tiny_docs) -> Path:
    p = tmp_path / "src.txt"
    p.write_text(tiny_docs["xinghe.txt"], encoding="utf-8")
    return p


def test_index_refuses_a_folder_of_other_files(tmp_path, src, capsys):
    mydocs = tmp_path / "mydocs"
    (mydocs / "sub").mkdir(parents=True)
    (mydocs / "notes.txt").write_text("笔记\n", encoding="utf-8")
    (mydocs / "sub" / "more.md").write_text("# 更多\n", encoding="utf-8")
    before, siblings = tree(mydocs), sorted(os.listdir(tmp_path))
    rc, err = run_index(capsys, "--index", mydocs, src)
    assert rc == 2, err
    assert "not an index" in err and "notes.txt" in err and "nothing was written" in err
    assert len(err.strip().splitlines()) == 1
    assert tree(mydocs) == before and sorted(os.listdir(tmp_path)) == siblings   # no lock file either


def test_index_refuses_a_project_folder_holding_the_source(tmp_path, tiny_docs, capsys):
    proj = tmp_path / "proj"
    (proj / "docs").mkdir(parents=True)
    (proj / "main.py").write_text("print('hi')\n", encoding="utf-8")
    (proj / "docs" / "a.txt").write_text(tiny_docs["xinghe.txt"], encoding="utf-8")
    before = tree(proj)
    rc, err = run_index(capsys, "--index", proj, proj / "docs")
    assert rc == 2 and tree(proj) == before, err


def test_index_refuses_a_file(tmp_path, src, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("笔记\n", encoding="utf-8")
    rc, err = run_index(capsys, "--index", notes, src)
    assert rc == 2 and "is a file" in err, err
    assert notes.is_file() and notes.read_text(encoding="utf-8") == "笔记\n"
    rc, err = run_index(capsys, "--index", notes / "index", src)            # a file on the way
    assert rc == 2 and notes.is_file(), err


def test_source_inside_the_index_or_index_inside_a_source(tmp_path, tiny_index_copy, write_corpus, capsys):
    before = tree(tiny_index_copy)
    rc, err = run_index(capsys, "--index", tiny_index_copy, tiny_index_copy / "documents.json")
    assert rc == 2 and "inside the index folder" in err, err
    assert tree(tiny_index_copy) == before
    corpus = write_corpus(tmp_path / "corpus")
    rc, err = run_index(capsys, "--index", corpus / "idx", corpus)
    assert rc == 2 and "is inside" in err and not (corpus / "idx").exists(), err
    # a hidden folder inside a source is never read: an index there is fine
    rc, err = run_index(capsys, "--index", corpus / ".qa-index", corpus)
    assert rc == 0, err
    assert len(load_index(corpus / ".qa-index").documents) == 3


def test_save_index_itself_never_replaces_a_foreign_folder(tmp_path, tiny_index):
    data = load_index(tiny_index)
    mydocs = tmp_path / "mydocs"
    mydocs.mkdir()
    (mydocs / "notes.txt").write_text("笔记\n", encoding="utf-8")
    with pytest.raises(UsageError):
        save_index(mydocs, data)
    assert sorted(os.listdir(mydocs)) == ["notes.txt"]


def test_an_index_folder_without_manifest_is_still_an_index(tiny_index_copy):
    (tiny_index_copy / "manifest.json").unlink()
    assert index_dir_state(tiny_index_copy)[0] == "index"          # `qa index --rebuild` may repair it
    (tiny_index_copy / "cache" / "mine.txt").write_text("x", encoding="utf-8")
    assert index_dir_state(tiny_index_copy) == ("foreign", ["cache/mine.txt"])


@pytest.mark.parametrize("what", ["folder", "file", "web_manifest"])
def test_ask_never_suggests_a_command_that_would_destroy(what, tmp_path, capsys):
    target = tmp_path / "target"
    if what == "file":
        target.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("笔记\n", encoding="utf-8")
        if what == "web_manifest":                 # a web project's manifest.json is not ours
            (target / "manifest.json").write_text('{"name": "app"}', encoding="utf-8")
    rc, _, err = run_ask(capsys, target)
    assert rc == 4, err
    assert f"--index {target}" not in err and "--rebuild" not in err, err
    assert "NEWDIR" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("what", ["missing", "empty"])
def test_ask_suggests_the_command_where_it_is_safe(what, tmp_path, capsys):
    target = tmp_path / "target"
    if what == "empty":
        target.mkdir()
    rc, _, err = run_ask(capsys, target)
    assert rc == 4 and f"qa index --index {target} PATH…" in err, err


# --- 2. the embedding cache is verified ---------------------------------------------

def _flip_exponents(vectors: Path, fraction: float = 0.02, bit: int = 14, seed: int = 3) -> int:
    arr = np.load(vectors)
    rows = np.random.default_rng(seed).choice(len(arr), max(1, int(len(arr) * fraction)), replace=False)
    raw = arr.view(np.uint16)
    raw[rows, 7] ^= np.uint16(1 << bit)                      # one exponent bit of one component per row
    np.save(vectors, arr, allow_pickle=False)
    return len(rows)


def _sentence_vectors(index: Path) -> dict[tuple, np.ndarray]:
    data = load_index(index)
    return {(s.doc_id, s.start, s.end): data.sentence_vectors[i] for i, s in enumerate(data.sentences)}


def _assert_same_vectors(index: Path, reference: Path) -> None:
    new, ref = _sentence_vectors(index), _sentence_vectors(reference)
    for key, vec in ref.items():
        assert float(np.abs(new[key] - vec).max()) < 2e-3, key


@pytest.mark.parametrize("checksums", [True, False], ids=["with_checksums", "old_format_no_checksums"])
def test_flipped_exponent_bits_in_the_cache_never_reach_a_new_index(checksums, tmp_path, tiny_index,
                                                                     tiny_index_copy, tiny_qa, capsys):
    cache = tiny_index_copy / "cache"
    if not checksums:
        (cache / "checksums.json").unlink()
    assert _flip_exponents(cache / "vectors.npy") >= 1
    new = tmp_path / "new.txt"
    new.write_text(NEW_DOC, encoding="utf-8")
    rc, err = run_index(capsys, "--index", tiny_index_copy, new)
    assert rc == 0, err
    assert "warning: embedding cache" in err and "encoded again" in err, err
    _assert_same_vectors(tiny_index_copy, tiny_index)
    pipe = Pipeline.load(tiny_index_copy)
    for q, expected in tiny_qa:
        assert pipe.answer(q).text == expected
    rc, err = run_index(capsys, "--index", tiny_index_copy)     # the damaged cache was replaced
    assert rc == 0 and "warning" not in err, err


def test_swapped_keys_are_detected(tmp_path, tiny_index, tiny_index_copy, capsys):
    keys_path = tiny_index_copy / "cache" / "keys.json"
    meta = json.loads(keys_path.read_text(encoding="utf-8"))
    meta["keys"][0], meta["keys"][1] = meta["keys"][1], meta["keys"][0]
    keys_path.write_text(json.dumps(meta), encoding="utf-8")
    new = tmp_path / "new.txt"
    new.write_text(NEW_DOC, encoding="utf-8")
    rc, err = run_index(capsys, "--index", tiny_index_copy, new)
    assert rc == 0 and "keys.json does not match its checksum" in err, err
    _assert_same_vectors(tiny_index_copy, tiny_index)


@pytest.mark.parametrize("content", ["{}", "[]", "null", '"keys"', "not json", '{"encoder_id": 1, "keys": []}',
                                     "KEYS_NOT_LIST", "KEY_NOT_HEX", "DUPLICATE_KEY"])
def test_malformed_keys_json_is_a_warning_not_an_internal_error(content, tmp_path, tiny_index_copy, capsys):
    cache = tiny_index_copy / "cache"
    meta = json.loads((cache / "keys.json").read_text(encoding="utf-8"))
    if content == "KEYS_NOT_LIST":
        content = json.dumps({"encoder_id": meta["encoder_id"], "keys": 5})
    elif content == "KEY_NOT_HEX":
        content = json.dumps({"encoder_id": meta["encoder_id"], "keys": ["../x"] + meta["keys"][1:]})
    elif content == "DUPLICATE_KEY":
        content = json.dumps({"encoder_id": meta["encoder_id"], "keys": [meta["keys"][1]] + meta["keys"][1:]})
    (cache / "keys.json").write_text(content, encoding="utf-8")
    (cache / "checksums.json").unlink()                   # content checks alone must catch it
    new = tmp_path / "new.txt"
    new.write_text(NEW_DOC, encoding="utf-8")
    rc, err = run_index(capsys, "--index", tiny_index_copy, new)
    assert rc == 0 and "internal error" not in err and "warning: embedding cache" in err, err


def test_cache_load_checks(tmp_path, tiny_index):
    from embeddings.vectors import EmbeddingCache
    meta = json.loads((tiny_index / "cache" / "keys.json").read_text(encoding="utf-8"))
    dim = int(np.load(tiny_index / "cache" / "vectors.npy").shape[1])
    good = EmbeddingCache(meta["encoder_id"], dim)
    assert good.load(tiny_index / "cache") is None and len(good._vectors) == len(meta["keys"])
    assert EmbeddingCache(meta["encoder_id"], dim).load(tmp_path / "nothing") is None
    other = EmbeddingCache("another-encoder", dim)                # another encoder's cache: unused, fine
    assert other.load(tiny_index / "cache") is None and not other._vectors
    for name, arr in (("nan", np.full((len(meta["keys"]), dim), np.nan, np.float16)),
                      ("zeros", np.zeros((len(meta["keys"]), dim), np.float16)),
                      ("shape", np.zeros((len(meta["keys"]), dim + 1), np.float16))):
        d = tmp_path / name
        d.mkdir()
        (d / "keys.json").write_bytes((tiny_index / "cache" / "keys.json").read_bytes())
        np.save(d / "vectors.npy", arr)
        c = EmbeddingCache(meta["encoder_id"], dim)
        assert c.load(d) and not c._vectors, name


def test_the_committed_seeds_cache_passes_every_check():
    from embeddings.encoders import get_encoder
    from embeddings.vectors import EmbeddingCache
    enc = get_encoder()
    cache = EmbeddingCache(enc.family, enc.dim)
    assert (PREBUILT_SEEDS_INDEX / "cache" / "checksums.json").exists()
    assert cache.load(PREBUILT_SEEDS_INDEX / "cache") is None
    assert len(cache._vectors) == len(json.loads((PREBUILT_SEEDS_INDEX / "cache" / "keys.json").read_text())["keys"])


# --- 3. a symlinked --index -----------------------------------------------------------

def test_symlinked_index_is_written_through(tmp_path, tiny_index_copy, capsys):
    alias = tmp_path / "alias"
    alias.symlink_to(tiny_index_copy, target_is_directory=True)
    new = tmp_path / "new.txt"
    new.write_text(NEW_DOC, encoding="utf-8")
    rc, err = run_index(capsys, "--index", alias, new)
    assert rc == 0, err
    assert alias.is_symlink() and alias.resolve() == tiny_index_copy.resolve()
    assert str(new.resolve()) in load_index(tiny_index_copy).documents       # the target was updated
    assert not [p for p in os.listdir(tmp_path) if ".alias." in p or ".old-" in p or ".new-" in p]
    rc, out, err = run_ask(capsys, alias, "紫金港2022年接待游客多少万人次")
    assert rc == 0 and "350万人次" in out, (out, err)


def test_dangling_symlinked_index_creates_its_target(tmp_path, src, capsys):
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere" / "real", target_is_directory=True)
    rc, err = run_index(capsys, "--index", dangling, src)
    assert rc == 0 and "internal error" not in err, err
    assert dangling.is_symlink() and (tmp_path / "nowhere" / "real" / "manifest.json").exists()
    rc, out, err = run_ask(capsys, dangling)
    assert rc == 0 and ANSWER in out, (out, err)


def _reader(stream, lines: list[str]):
    for line in iter(stream.readline, ""):
        lines.append(line)


def test_two_names_share_one_lock_and_a_waiting_writer_says_so(tmp_path, tiny_index_copy):
    """Item 3 (two writers through two names) and item 10 (the waiting writer is silent)."""
    alias = tmp_path / "alias"
    alias.symlink_to(tiny_index_copy, target_is_directory=True)
    new = tmp_path / "new.txt"
    new.write_text(NEW_DOC, encoding="utf-8")
    other = tmp_path / "other.txt"
    other.write_text("碧水湾简介\n碧水湾2020年建成污水处理厂12座。\n", encoding="utf-8")
    with write_lock(tiny_index_copy):                          # a writer, through the real name
        proc = subprocess.Popen([sys.executable, "-m", "qa", "index", "--index", str(alias), str(new), "--quiet"],
                                cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                encoding="utf-8", env=dict(os.environ))
        lines: list[str] = []
        threading.Thread(target=_reader, args=(proc.stderr, lines), daemon=True).start()
        deadline = time.monotonic() + 120
        while not any("waiting for another writer" in ln for ln in lines) and time.monotonic() < deadline:
            assert proc.poll() is None, lines
            time.sleep(0.1)
        assert any("waiting for another writer" in ln and f"(pid {os.getpid()})" in ln and "600 s" in ln
                   for ln in lines), lines
        assert proc.poll() is None                             # it waits for the lock
        from qa.index.collection import update_collection
        update_collection(tiny_index_copy, [str(other)], seeds=False)   # this writer's update
    assert proc.wait(timeout=300) == 0, "".join(lines)
    docs = load_index(tiny_index_copy).documents
    assert str(new.resolve()) in docs and str(other.resolve()) in docs        # neither update lost


# --- 4. a file caught mid-rewrite ----------------------------------------------------

def test_a_source_read_empty_keeps_its_previous_version(tmp_path, write_corpus, build_index, tiny_qa, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    index = build_index([corpus], tmp_path / "index")
    xinghe = corpus / "xinghe.txt"
    old_text = xinghe.read_text(encoding="utf-8")
    xinghe.write_bytes(b"")                                   # truncated, not yet written again
    rc, err = run_index(capsys, "--index", index)
    assert rc == 0, err
    assert "reads empty now" in err and "kept the version indexed before" in err, err
    data = load_index(index)
    assert data.documents[str(xinghe.resolve())].text == old_text
    assert Pipeline.load(index).answer(tiny_qa[0][0]).text == tiny_qa[0][1]
    xinghe.write_text(old_text.replace("1520", "1688"), encoding="utf-8")     # the rewrite lands
    rc, err = run_index(capsys, "--index", index)
    assert rc == 0 and "1688" in load_index(index).documents[str(xinghe.resolve())].text, err
    xinghe.unlink()                                           # deleting it still removes it
    rc, err = run_index(capsys, "--index", index)
    assert rc == 0 and str(xinghe.resolve()) not in load_index(index).documents, err


def test_a_new_empty_file_is_still_skipped(tmp_path, write_corpus, build_index, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    index = build_index([corpus], tmp_path / "index")
    (corpus / "blank.txt").write_bytes(b"")
    rc, err = run_index(capsys, "--index", index)
    assert rc == 1 and "skipped" in err and "empty file" in err, err


# --- 5. disk full ----------------------------------------------------------------------

@pytest.mark.parametrize("where", ["faiss", "json", "mkdtemp"])
def test_disk_full_is_one_line_and_the_old_index_survives(where, tmp_path, tiny_index_copy, tiny_qa,
                                                          monkeypatch, capsys):
    import qa.index.store as store

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "faiss":
        monkeypatch.setattr(store.faiss, "write_index", full)
    elif where == "mkdtemp":
        monkeypatch.setattr(store.tempfile, "mkdtemp", full)
    else:
        monkeypatch.setattr(store.json, "dumps", full)
    new = tmp_path / "new.txt"
    new.write_text(NEW_DOC, encoding="utf-8")
    rc, err = run_index(capsys, "--index", tiny_index_copy, new)
    monkeypatch.undo()
    assert rc == 6, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "the disk is full" in lines[0] and "left as it was" in lines[0], err
    assert "internal error" not in err
    pipe = Pipeline.load(tiny_index_copy)
    assert str(new.resolve()) not in pipe.index.documents
    for q, expected in tiny_qa:
        assert pipe.answer(q).text == expected
    assert not [p for p in os.listdir(tiny_index_copy.parent) if ".new-" in p or ".old-" in p]


def test_read_only_parent_is_one_line(tmp_path, src, monkeypatch, capsys):
    import qa.index.store as store

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / ".idx.lock"))

    monkeypatch.setattr(store, "open", denied, raising=False)
    rc, err = run_index(capsys, "--index", tmp_path / "idx", src)
    assert rc == 6 and "permission denied" in err and "internal error" not in err, err


def test_lock_timeout_message(tmp_path, tiny_index_copy):
    with write_lock(tiny_index_copy):
        done: list = []

        def other():
            try:
                with write_lock(Path(str(tiny_index_copy)), timeout=0.5, quiet=True):
                    done.append("got it")
            except IndexError_ as e:
                done.append(str(e))

        t = threading.Thread(target=other)
        t.start()
        t.join(30)
    assert done and "another 'qa index' is writing" in done[0] and "waited" in done[0]
