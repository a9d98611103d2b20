"""The user's own documents, indexed incrementally, end to end.

Real files of every supported kind are built in a temporary folder (a GBK .txt,
a Big5 .txt, an HTML page, a .docx, a PDF with Chinese text), each holding a fact
only it contains. ``qa index FOLDER --index DIR`` runs as a subprocess; then
``answer(question, index=DIR)`` must find every fact with an exact citation; a
second run encodes nothing; editing one file re-encodes only its passages;
deleting one drops it; ``--rebuild`` starts over. The progress bar of ``qa index``
is tested as pure rendering, through ``index_documents``' callback, and on a real
terminal (a pty): shown there, silent with ``--quiet`` and when stderr is a pipe.
"""
from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa.api import answer, refresh_pipeline  # (qa before embeddings: the import order they need)
from qa.index.store import load_index  # noqa: I001

ROOT = Path(__file__).resolve().parents[1]

# file name → (title, fact, question, what the answer must contain)
FACTS = {
    "linjiang.txt": ("临江新区统计公报", "临江新区2023年的注册企业数量为3721家",
                     "临江新区2023年的注册企业数量是多少", "3721家"),
    "ganwan.txt": ("港灣區年報", "港灣區2022年的貨櫃吞吐量為1850萬標準箱",
                   "港灣區2022年的貨櫃吞吐量是多少", "1850萬標準箱"),
    "donghu.html": ("东湖园区概况", "东湖园区的绿化覆盖率达到41.7%",
                    "东湖园区的绿化覆盖率是多少", "41.7%"),
    "xiling.docx": ("西岭镇旅游报告", "西岭镇2021年接待游客86万人次",
                    "西岭镇2021年接待游客多少人次", "86万人次"),
    "beishan.pdf": ("北山港口年报", "北山港2020年的集装箱航线共有58条",
                    "北山港2020年的集装箱航线有多少条", "58条"),
}
EDIT_FACT = ("临江新区的道路总里程为482公里", "临江新区的道路总里程是多少", "482公里")
COUNTS = re.compile(r"(\d+) new, (\d+) changed, (\d+) removed, (\d+) unchanged; "
                    r"encoded (\d+) passages \((\d+) from cache\)")


def write_gbk(path: Path, extra: str = "") -> None:
    title, fact = FACTS[path.name][:2]
    path.write_bytes(f"{title}\r\n{fact}，同比增长12.5%。\r\n{extra}".encode("gbk"))


def make_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_gbk(folder / "linjiang.txt")
    title, fact = FACTS["ganwan.txt"][:2]
    (folder / "ganwan.txt").write_bytes(f"{title}\n{fact}，較上年增長。\n".encode("big5"))
    title, fact = FACTS["donghu.html"][:2]
    (folder / "donghu.html").write_bytes(
        f'<html><head><meta charset="utf-8"><title>{title}</title></head><body>'
        f'<nav><a href="/">首页</a></nav><article><h1>{title}</h1><p>{fact}，位居全市第一。</p></article>'
        "<footer>版权所有</footer></body></html>".encode("utf-8"))
    import docx
    title, fact = FACTS["xiling.docx"][:2]
    d = docx.Document()
    d.core_properties.title = title
    d.add_heading(title, level=1)
    d.add_paragraph(f"{fact}，旅游收入稳步增长。")
    d.save(str(folder / "xiling.docx"))
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    title, fact = FACTS["beishan.pdf"][:2]
    c = canvas.Canvas(str(folder / "beishan.pdf"))
    c.setTitle(title)
    c.setFont("STSong-Light", 12)
    c.drawString(72, 750, title)
    c.drawString(72, 730, f"{fact}，覆盖东南亚各国。")
    c.showPage()
    c.save()
    return folder


def counts(stdout: str) -> dict[str, int]:
    m = COUNTS.search(stdout)
    assert m, stdout
    return dict(zip(["new", "changed", "removed", "unchanged", "encoded", "cached"], map(int, m.groups())))


def ask(question: str, index: Path):
    return answer(question, index=str(index))


def assert_found(index: Path, name: str, question: str, expected: str, check_citations) -> None:
    a = ask(question, index)
    assert not a.no_answer and expected in a.text, (name, a.text, a.score)
    docs = load_index(index).documents
    c = a.citations[0]
    assert Path(c.doc_id).name == name
    assert docs[c.doc_id].text[c.start:c.end] == c.quote
    check_citations(a, docs)


@pytest.fixture
def private_home(tmp_path, monkeypatch):
    """QA_HOME in tmp, QA_INDEX unset: the user's default index is never touched."""
    monkeypatch.setenv("QA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QA_INDEX", raising=False)
    return tmp_path / "home"


def test_incremental_collection_end_to_end(tmp_path, private_home, qa_cli, check_citations):
    docs = make_corpus(tmp_path / "docs")
    index = tmp_path / "index"

    # 1. first run: every file new, every fact answered with a citation into the right file
    r = qa_cli("index", str(docs), "--index", str(index))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""                                   # stderr is a pipe: no progress bar
    n = counts(r.stdout)
    assert (n["new"], n["changed"], n["removed"], n["unchanged"]) == (5, 0, 0, 0)
    assert n["encoded"] > 0
    refresh_pipeline(index)
    for name, (_, _, question, expected) in FACTS.items():
        assert_found(index, name, question, expected, check_citations)

    # title, source path and mtime are kept for every document
    stored = load_index(index).documents
    assert sorted(Path(d).name for d in stored) == sorted(FACTS)
    for doc_id, doc in stored.items():
        path = docs / Path(doc_id).name
        assert doc.title == FACTS[path.name][0]
        assert Path(doc.source).resolve() == path.resolve()
        assert doc.mtime == pytest.approx(path.stat().st_mtime)
        assert FACTS[path.name][1] in doc.text

    # 2. nothing changed: nothing encoded
    r = qa_cli("index", "--index", str(index))
    assert r.returncode == 0, r.stderr
    assert "0 new, 0 changed, 0 removed, 5 unchanged" in r.stdout and "encoded 0 passages" in r.stdout

    # 3. one file edited: only its passages are encoded again
    edited = docs / "linjiang.txt"
    write_gbk(edited, extra=f"{EDIT_FACT[0]}。\r\n")
    later = edited.stat().st_mtime + 5
    os.utime(edited, (later, later))
    r = qa_cli("index", "--index", str(index))
    assert r.returncode == 0, r.stderr
    n = counts(r.stdout)
    assert (n["new"], n["changed"], n["removed"], n["unchanged"]) == (0, 1, 0, 4), r.stdout
    data = load_index(index)
    doc_id = str(edited.resolve())
    own = sum(c.doc_id == doc_id for c in data.chunks) + sum(s.doc_id == doc_id for s in data.sentences)
    print(f"\nedited {edited.name}: re-encoded {n['encoded']} of its {own} passages "
          f"(chunks + sentences); {n['cached']} from cache")
    assert 0 < n["encoded"] <= own
    assert data.documents[doc_id].mtime == pytest.approx(later)
    refresh_pipeline(index)
    assert_found(index, "linjiang.txt", EDIT_FACT[1], EDIT_FACT[2], check_citations)
    for name in ("linjiang.txt", "xiling.docx"):                # its old fact, and another file's
        assert_found(index, name, *FACTS[name][2:], check_citations)

    # 4. one file deleted: it is removed and its fact is no longer answered
    (docs / "beishan.pdf").unlink()
    r = qa_cli("index", "--index", str(index))
    assert r.returncode == 0, r.stderr
    n = counts(r.stdout)
    assert (n["new"], n["changed"], n["removed"], n["unchanged"], n["encoded"]) == (0, 0, 1, 4, 0), r.stdout
    assert not any(d.endswith("beishan.pdf") for d in load_index(index).documents)
    refresh_pipeline(index)
    a = ask(FACTS["beishan.pdf"][2], index)
    assert "58条" not in a.text
    assert not any(c.doc_id.endswith("beishan.pdf") for x in [a, *a.alternatives] for c in x.citations)
    assert_found(index, "ganwan.txt", FACTS["ganwan.txt"][2], FACTS["ganwan.txt"][3], check_citations)

    # 5. --rebuild starts over: nothing from the cache, and with a path the collection is just that
    r = qa_cli("index", str(docs / "donghu.html"), "--index", str(index), "--rebuild")
    assert r.returncode == 0, r.stderr
    n = counts(r.stdout)
    assert (n["new"], n["changed"], n["removed"], n["cached"]) == (1, 0, 0, 0), r.stdout
    assert n["encoded"] > 0
    assert [Path(d).name for d in load_index(index).documents] == ["donghu.html"]
    refresh_pipeline(index)
    assert_found(index, "donghu.html", FACTS["donghu.html"][2], FACTS["donghu.html"][3], check_citations)
    assert "3721" not in ask(FACTS["linjiang.txt"][2], index).text


def test_a_deleted_named_file_is_removed_without_a_skip(tmp_path, private_home, qa_cli):
    """A file named on an earlier run and deleted since is dropped (\"1 removed\"), exit 0."""
    docs = tmp_path / "docs"
    docs.mkdir()
    a, b = docs / "a.txt", docs / "b.txt"
    a.write_text("甲文件\n甲镇的人口为1.2万人。\n", encoding="utf-8")
    b.write_text("乙文件\n乙镇的人口为3.4万人。\n", encoding="utf-8")
    index = tmp_path / "index"
    r = qa_cli("index", str(a), str(b), "--index", str(index), "--quiet")
    assert r.returncode == 0 and "2 new" in r.stdout, r.stderr
    a.unlink()
    r = qa_cli("index", "--index", str(index), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "0 new, 0 changed, 1 removed, 1 unchanged" in r.stdout and "encoded 0 passages" in r.stdout
    assert "skipped" not in r.stderr and "no longer exists" in r.stderr
    assert [Path(d).name for d in load_index(index).documents] == ["b.txt"]


# ---------------------------------------------------------------- progress bar

from qa.progress import TerminalProgress, eta_seconds, format_duration, format_rate, render_done, render_line  # noqa: E402


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (7.4, "0:07"), (59.6, "1:00"), (65, "1:05"),
                                           (3723, "1:02:03"), (None, "--:--"), (float("inf"), "--:--"),
                                           (-1, "--:--"), (float("nan"), "--:--")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("rate, text", [(12.345, "12.3/s"), (0.5, "0.50/s"), (250.4, "250/s"),
                                        (0, "?/s"), (None, "?/s"), (float("inf"), "?/s")])
def test_format_rate(rate, text):
    assert format_rate(rate) == text


def test_eta():
    assert eta_seconds(10, 40, 5.0) == pytest.approx(15.0)      # 2/s, 30 left
    assert eta_seconds(40, 40, 5.0) == 0
    assert eta_seconds(0, 40, 5.0) is None and eta_seconds(3, 40, 0) is None


def test_render_line():
    line = render_line(120, 480, 10.0, documents=3, width=100)
    assert len(line) <= 100
    assert line.startswith("encoding  25% |")
    assert "120/480 passages of 3 docs, 12.0/s,  0:30 left" in line
    bar = line[line.index("|") + 1:line.rindex("|")]
    assert set(bar) == {"#", "."} and bar.count("#") == round(len(bar) / 4)
    assert "  0/480 passages of 1 doc,    ?/s, --:-- left" in render_line(0, 480, 0.5, documents=1)
    full = render_line(480, 480, 40.0, width=80)
    assert "100%" in full and "." not in full.split("|")[1] and " 0:00 left" in full
    narrow = render_line(5, 10, 1.0, width=30)                  # no room for a bar: numbers only
    assert len(narrow) <= 30 and "|" not in narrow and narrow.startswith("encoding  50%")
    assert render_done(480, 40.0, 3) == "encoded 480 passages of 3 docs in 0:40 (12.0/s)"


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_terminal_progress_draws_on_a_terminal_and_nothing_elsewhere():
    clock, out = FakeClock(), io.StringIO()
    bar = TerminalProgress(out, enabled=True, clock=clock)
    bar.start(100, documents=2)
    for _ in range(4):
        clock.t += 2.5
        bar(25)
    bar.close()
    text = out.getvalue()
    assert text.startswith("\rencoding   0% |") and "100/100 passages of 2 docs, 10.0/s,  0:00 left" in text
    assert text.endswith("\n")
    assert text.rsplit("\r", 1)[1].rstrip() == "encoded 100 passages of 2 docs in 0:10 (10.0/s)"
    lines = text.split("\r")[1:-1]
    assert len(lines) == 5 and len({len(x) for x in lines}) == 1       # the bar keeps its length
    assert "\n" not in text[:-1]                                 # one line, redrawn in place

    for bar in (TerminalProgress(io.StringIO()),                 # not a terminal (StringIO.isatty() is False)
                TerminalProgress(io.StringIO(), enabled=False)):   # --quiet
        bar.start(10, 1)
        bar(10)
        bar.close()
        assert bar.stream.getvalue() == ""
    nothing = io.StringIO()
    bar = TerminalProgress(nothing, enabled=True, clock=clock)   # nothing to encode: no bar at all
    bar.start(0, 0)
    bar.close()
    assert nothing.getvalue() == ""


class FakeEncoder:
    encoder_id, dim = "fake-test-encoder", 8

    def encode_passages(self, texts):
        rng = np.random.default_rng(len(texts))
        v = rng.normal(size=(len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    encode_queries = encode_passages


class Recorder:
    def __init__(self):
        self.starts, self.steps = [], []

    def start(self, total, documents=0):
        self.starts.append((total, documents))

    def __call__(self, n):
        self.steps.append(n)


def test_index_documents_tells_the_progress_callback_the_total_first(tmp_path):
    from qa.index.build import index_documents
    from qa.types import Document
    docs = [Document(f"d{i}", f"标题{i}", f"第{i}篇文档。" + "这是一句话。" * (i + 1) + "\n" + "又一句话。" * 3)
            for i in range(3)]
    rec = Recorder()
    report = index_documents(docs, tmp_path / "idx", FakeEncoder(), progress=rec)
    assert rec.starts == [(report.texts_encoded, 3)] and sum(rec.steps) == report.texts_encoded > 0
    edited = docs[:2] + [Document("d2", "标题2", docs[2].text + "新加的一句话。")]
    rec = Recorder()
    report = index_documents(edited, tmp_path / "idx", FakeEncoder(), progress=rec)
    assert report.changed == ["d2"]
    assert rec.starts == [(report.texts_encoded, 1)] and sum(rec.steps) == report.texts_encoded > 0
    rec = Recorder()
    report = index_documents(edited, tmp_path / "idx", FakeEncoder(), progress=rec)
    assert rec.starts == [(0, 0)] and rec.steps == [] and report.texts_encoded == 0
    steps = []                                                   # a plain callable still works
    index_documents(docs, tmp_path / "idx2", FakeEncoder(), progress=steps.append)
    assert sum(steps) > 0


def run_on_terminal(args, timeout: float = 240) -> tuple[int, str, str]:
    """``python -m qa ARGS`` with stderr on a pseudo-terminal: (rc, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "qa", *args], cwd=ROOT, env=dict(os.environ),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    finally:
        os.close(slave)
    shown = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 4096)
            except OSError:                                      # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode("utf-8", "replace"), shown.decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_silent_with_quiet(tmp_path, private_home):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("南湖镇简介\n南湖镇的水域面积为12.6平方公里。\n", encoding="utf-8")
    index = tmp_path / "index"
    rc, out, shown = run_on_terminal(["index", str(docs), "--index", str(index), "--quiet"])
    assert rc == 0 and "1 new" in out, (out, shown)
    assert shown == ""                                           # --quiet: nothing on the terminal
    rc, out, shown = run_on_terminal(["index", "--index", str(index), "--rebuild"])
    assert rc == 0 and "encoded" in out, (out, shown)
    encoded = counts(out)["encoded"]
    assert "\rencoding " in shown and f"/{encoded} passages of 1 doc, " in shown and " left" in shown, shown
    assert f"encoded {encoded} passages of 1 doc in " in shown, shown
    # stderr a pipe: nothing either (asserted in test_incremental_collection_end_to_end)
