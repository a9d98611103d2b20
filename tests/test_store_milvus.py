"""The Milvus store (``--store milvus://…``), against a real ``milvus-lite server`` on 127.0.0.1.

Skipped, with the reason, when the ``milvus`` extra (pymilvus, milvus-lite, jieba) is not
installed; the tests of ``--store`` parsing and of the missing extra's message always run.
"""
from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time

import pytest

from qa.errors import IndexError_, StoreUnavailableError, UsageError
from qa.index.stores import parse_store

HAVE_MILVUS = all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite", "jieba"))
needs_milvus = pytest.mark.skipif(not HAVE_MILVUS, reason='the milvus extra is not installed '
                                  '(pip install "qa-zh[milvus]": pymilvus, milvus-lite, jieba)')


# --- the --store forms (no Milvus needed) -----------------------------------------------------

def test_store_forms_parse_into_client_uri_and_collection():
    assert parse_store(None).kind == "faiss"
    assert parse_store("faiss").kind == "faiss"
    s = parse_store("milvus://10.0.0.5:19530/reports")
    assert (s.kind, s.uri, s.collection) == ("milvus", "http://10.0.0.5:19530", "reports")
    assert parse_store("milvus://db.example.org").uri == "http://db.example.org:19530"
    assert parse_store("milvus+https://db.example.org:443/x").uri == "https://db.example.org:443"
    lite = parse_store("milvus-lite:/data/qa.db#news")
    assert (lite.kind, lite.uri, lite.collection) == ("milvus-lite", "/data/qa.db", "news")


@pytest.mark.parametrize("bad", ["milvus:/x", "postgres://h/x", "milvus://h:99999/x", "milvus://h:1/bad-name",
                                 "milvus-lite:/data/folder#x", "milvus-lite:/data/qa.db#1x"])
def test_a_bad_store_is_a_usage_error_that_lists_the_forms(bad):
    with pytest.raises(UsageError) as e:
        parse_store(bad)
    assert "--store" in str(e.value)


def test_without_the_extra_the_message_names_it(monkeypatch):
    from qa.index import milvus_store
    monkeypatch.setitem(sys.modules, "pymilvus", None)       # import pymilvus → ImportError
    with pytest.raises(UsageError, match=r"qa-zh\[milvus\]"):
        milvus_store.MilvusStore(parse_store("milvus://127.0.0.1:1/x"))


def test_cli_store_and_index_together_is_a_usage_error(qa_cli, tmp_path):
    r = qa_cli("index", "--index", str(tmp_path / "i"), "--store", "milvus://127.0.0.1:1/x", str(tmp_path))
    assert r.returncode == 2 and "not both" in r.stderr and "Traceback" not in r.stderr


def test_the_faiss_index_folder_through_the_store_interface(tiny_index):
    from qa.index.stores import FaissStore
    from qa.question import make_question
    encoder = _encoder()
    store = FaissStore(tiny_index, encoder)
    question = make_question("星河市2023年地区生产总值是多少")
    question.vector = encoder.encode_queries([question.text])[0]
    key, _ = store.keyword_search(question, 3)[0]
    chunk = store.fetch_chunks([key])[key]
    assert chunk.doc_id.endswith("xinghe.txt") and "1520亿元" in chunk.text
    assert store.dense_search(question.vector, 1)[0][0] == key
    assert store.read_manifest()["counts"]["documents"] == 3


# --- a real server -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(data_dir) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300          # a readiness wait, not a timed assertion
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"milvus-lite server exited: {proc.stderr.read().decode(errors='replace')[-500:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.2)
    proc.kill()
    pytest.fail("milvus-lite server did not start listening")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """``milvus-lite server`` on 127.0.0.1 for this module: its ``milvus://`` prefix."""
    if not HAVE_MILVUS:
        pytest.skip('the milvus extra is not installed (pip install "qa-zh[milvus]")')
    proc, port = _start_server(tmp_path_factory.mktemp("milvus") / "data")
    yield f"milvus://127.0.0.1:{port}"
    _stop(proc)


@pytest.fixture(scope="module")
def seeds_store(milvus_server):
    """The seeds indexed into the server (their vectors come from the prebuilt seeds cache)."""
    from qa.index.backends import open_store
    from qa.index.stores import update_store
    uri = f"{milvus_server}/seeds"
    report, _ = update_store(open_store(uri), [], seeds=True)
    assert report.added and report.texts_encoded == 0
    return uri


@needs_milvus
def test_seed_questions_get_the_same_answers_and_citations_as_the_faiss_store(seeds_store, check_citations):
    from qa.evaluation.run import EVAL_SET, load_eval_set
    from qa.pipeline import Pipeline
    faiss, milvus = Pipeline.load(), Pipeline.load(store=seeds_store)
    assert milvus.retriever.name == "milvus-minmax"
    questions = load_eval_set(EVAL_SET)[::4]          # every 4th of the 249: 63 questions
    for q in questions:
        a, b = faiss.answer(q["question"]), milvus.answer(q["question"])
        check_citations(b, milvus.index.documents)
        assert (b.text, b.no_answer) == (a.text, a.no_answer), q["id"]
        assert [(c.doc_id, c.start, c.end, c.quote) for c in b.citations] == \
               [(c.doc_id, c.start, c.end, c.quote) for c in a.citations], q["id"]


@needs_milvus
def test_each_chunk_row_keeps_original_and_normalised_text_and_exact_offsets(seeds_store):
    from qa.index.backends import open_store
    store = open_store(seeds_store)
    documents = store.load(_encoder()).documents
    rows = list(store._iterate("chunks", 'doc_id like "000_%"', ["doc_id", "start", "end", "text", "text_norm"]))
    assert rows
    for r in rows:
        assert documents[r["doc_id"]].text[r["start"]:r["end"]] == r["text"]
        assert len(r["text_norm"]) == len(r["text"])
    assert any(r["text"] != r["text_norm"] for r in rows)     # 000_ is traditional: folded to simplified


@needs_milvus
def test_both_stores_find_the_same_chunks_for_a_question(seeds_store):
    from qa.index.backends import open_store
    from qa.index.stores import FaissStore
    from qa.paths import PREBUILT_SEEDS_INDEX
    from qa.question import make_question
    encoder = _encoder()
    faiss, milvus = FaissStore(PREBUILT_SEEDS_INDEX, encoder), open_store(seeds_store)
    question = make_question("新材料产业产值是多少")
    question.vector = encoder.encode_queries([question.text])[0]

    def spans(store, pairs):
        chunks = store.fetch_chunks([k for k, _ in pairs])
        return [(chunks[k].doc_id, chunks[k].start, chunks[k].end) for k, _ in pairs]

    assert spans(milvus, milvus.dense_search(question.vector, 3)) == spans(faiss, faiss.dense_search(question.vector, 3))
    assert spans(milvus, milvus.keyword_search(question, 3)) == spans(faiss, faiss.keyword_search(question, 3))


@needs_milvus
def test_a_traditional_question_finds_its_answer_through_milvus(seeds_store):
    from qa.pipeline import Pipeline
    a = Pipeline.load(store=seeds_store).answer("經開區2019年經濟總量是多少")
    assert not a.no_answer and "1350" in a.text


@needs_milvus
def test_update_delete_and_reindex_a_document(milvus_server, tmp_path, write_corpus, qa_cli):
    corpus = write_corpus(tmp_path / "corpus")
    uri = f"{milvus_server}/tiny_update"
    r = qa_cli("index", "--quiet", "--no-seeds", "--store", uri, str(corpus))
    assert r.returncode == 0, r.stderr
    assert "3 new" in r.stdout
    r = qa_cli("ask", "--store", uri, "--json", "星河市2023年地区生产总值是多少")
    assert r.returncode == 0 and '"text": "1520亿元"' in r.stdout

    # nothing changed: nothing encoded, nothing rewritten
    r = qa_cli("index", "--quiet", "--store", uri)
    assert "3 unchanged; encoded 0 passages" in r.stdout, r.stdout

    # one file changed: only its passages are encoded; the new figure is answered
    (corpus / "xinghe.txt").write_text("星河市概况\n2024年，星河市地区生产总值达到1680亿元。\n", encoding="utf-8")
    r = qa_cli("index", "--quiet", "--store", uri)
    assert "1 changed" in r.stdout and "2 unchanged" in r.stdout, r.stdout
    r = qa_cli("ask", "--store", uri, "--json", "星河市2024年地区生产总值是多少")
    assert '"text": "1680亿元"' in r.stdout

    # a file deleted: its rows leave the store
    (corpus / "bailu.md").unlink()
    r = qa_cli("index", "--quiet", "--store", uri)
    assert "1 removed" in r.stdout, r.stdout
    from qa.index.backends import open_store
    store = open_store(uri)
    assert not any("bailu" in d for d in store.stored_documents())
    assert not list(store._iterate("chunks", 'doc_id like "%bailu.md"', ["key"]))
    r = qa_cli("ask", "--store", uri, "--json", "白鹭湖新区有多少家高新技术企业")
    assert '"no_answer": true' in r.stdout


@needs_milvus
def test_rows_that_do_not_match_the_manifest_are_reported_stale(milvus_server, tmp_path, write_corpus, qa_cli):
    from qa.index.backends import open_store
    corpus = write_corpus(tmp_path / "corpus")
    uri = f"{milvus_server}/tiny_stale"
    assert qa_cli("index", "--quiet", "--no-seeds", "--store", uri, str(corpus)).returncode == 0
    store = open_store(uri)
    store._call("delete", store._c("chunks"), filter='doc_id like "%qingshan.txt"')   # a half-finished write
    r = qa_cli("ask", "--store", uri, "星河市2023年地区生产总值是多少")
    assert r.returncode == 4 and "does not match its manifest" in r.stderr and f"qa index --store {uri}" in r.stderr
    assert "Traceback" not in r.stderr
    # the command the message names repairs it: the missing rows are written again
    r = qa_cli("index", "--quiet", "--store", uri)
    assert r.returncode == 0, r.stderr
    assert qa_cli("ask", "--store", uri, "星河市2023年地区生产总值是多少").returncode == 0


@needs_milvus
def test_another_encoder_is_a_mismatch_with_the_rebuild_command(milvus_server, tmp_path, write_corpus):
    from qa.index.backends import open_store
    from qa.pipeline import Pipeline
    corpus = write_corpus(tmp_path / "corpus")
    uri = f"{milvus_server}/tiny_mismatch"
    from qa.index.stores import update_store
    update_store(open_store(uri), [str(corpus)], seeds=False)
    store = open_store(uri)
    manifest = store.read_manifest()
    store.write_manifest({**manifest, "encoder_id": "st:other", "encoder_family": "st:other"})
    with pytest.raises(IndexError_, match=f"qa index --rebuild --store {uri}"):
        Pipeline.load(store=uri)


@needs_milvus
def test_an_interrupted_index_run_resumes_without_encoding_what_was_written(milvus_server, tmp_path, write_corpus,
                                                                            monkeypatch):
    from qa.index import stores
    from qa.index.backends import open_store
    from qa.pipeline import Pipeline
    monkeypatch.setattr(stores, "WRITE_BATCH", 2)
    corpus = write_corpus(tmp_path / "corpus")
    uri = f"{milvus_server}/tiny_resume"
    store = open_store(uri)
    written = []
    real_add = store.add_rows

    def add_then_fail(rows):            # the third batch of rows never arrives
        if len(written) == 2:
            raise StoreUnavailableError("the server went away")
        written.append(len(rows))
        real_add(rows)

    monkeypatch.setattr(store, "add_rows", add_then_fail)
    with pytest.raises(StoreUnavailableError):
        stores.update_store(store, [str(corpus)], seeds=False)
    with pytest.raises(IndexError_):          # no manifest yet: not readable half-written
        Pipeline.load(store=uri)
    report, _ = stores.update_store(open_store(uri), [str(corpus)], seeds=False)
    assert report.texts_cached == sum(written)          # the two batches written before the failure
    assert report.texts_encoded > 0
    assert Pipeline.load(store=uri).answer("白鹭湖新区有多少家高新技术企业").text == "86家"


@needs_milvus
def test_a_document_added_by_an_interrupted_update_is_completed_next_time(milvus_server, tmp_path, write_corpus,
                                                                          tiny_docs, monkeypatch):
    from qa.index import stores
    from qa.index.backends import open_store
    from qa.pipeline import Pipeline
    corpus = write_corpus(tmp_path / "corpus", {k: v for k, v in tiny_docs.items() if k != "bailu.md"})
    uri = f"{milvus_server}/tiny_add"
    stores.update_store(open_store(uri), [str(corpus)], seeds=False)
    (corpus / "bailu.md").write_text(tiny_docs["bailu.md"], encoding="utf-8")
    store = open_store(uri)
    real_add = store.add_rows
    written = []

    def add_then_fail(rows):            # the new file's chunks arrive, its sentences do not
        if written:
            raise StoreUnavailableError("the server went away")
        written.append(len(rows))
        real_add(rows)

    monkeypatch.setattr(store, "add_rows", add_then_fail)
    with pytest.raises(StoreUnavailableError):
        stores.update_store(store, [], seeds=False)
    report, _ = stores.update_store(open_store(uri), [], seeds=False)
    assert report.added == [str((corpus / "bailu.md").resolve())]     # not taken for unchanged
    assert report.texts_cached == written[0]
    assert Pipeline.load(store=uri).answer("白鹭湖新区有多少家高新技术企业").text == "86家"


@needs_milvus
def test_a_server_that_is_down_is_one_line_and_exit_code_7(qa_cli):
    uri = f"milvus://127.0.0.1:{_free_port()}/seeds"
    for args in (["ask", "--store", uri, "新材料产业产值是多少"], ["index", "--store", uri, "--quiet"]):
        r = qa_cli(*args)
        assert r.returncode == 7, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "cannot connect to the Milvus store at http://127.0.0.1" in r.stderr


@needs_milvus
def test_a_server_killed_between_questions_gives_a_clear_error(tmp_path, write_corpus):
    from qa.index.backends import open_store
    from qa.index.stores import update_store
    from qa.pipeline import Pipeline
    proc, port = _start_server(tmp_path / "data")
    try:
        uri = f"milvus://127.0.0.1:{port}/tiny_kill"
        update_store(open_store(uri), [str(write_corpus(tmp_path / "corpus"))], seeds=False)
        pipe = Pipeline.load(store=uri)
        assert pipe.answer("白鹭湖新区有多少家高新技术企业").text == "86家"
        _stop(proc)
        with pytest.raises(StoreUnavailableError, match="is the server running") as e:
            pipe.answer("星河市2023年地区生产总值是多少")
        assert e.value.exit_code == 7 and "\n" not in str(e.value)
    finally:
        _stop(proc)


@needs_milvus
def test_milvus_lite_folder_form(tmp_path, write_corpus, qa_cli):
    uri = f"milvus-lite:{tmp_path}/qa.db#tiny"
    r = qa_cli("index", "--quiet", "--no-seeds", "--store", uri, str(write_corpus(tmp_path / "corpus")))
    assert r.returncode == 0, r.stderr
    r = qa_cli("ask", "--store", uri, "青山县什么时候升级为国家级生态示范区")
    assert r.returncode == 0 and "2015年12月" in r.stdout


def _encoder():
    from embeddings.encoders import get_encoder
    return get_encoder()
