"""Uploading files on the chat page, without a browser: file names made safe and
kept inside ``$QA_HOME/uploads/<collection>/``, the collection updated
incrementally with progress, a summary of what was indexed and what was skipped
(with the reason), and the chat then answering from the updated index."""
from __future__ import annotations

from pathlib import Path

import pytest

from qa.api import get_pipeline
from ui import app, uploads

FACT = "临江新区2023年的注册企业数量为3721家"
QUESTION = "临江新区2023年的注册企业数量是多少"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private QA_HOME (uploads go under it) and no QA_INDEX: nothing of the user's is touched."""
    monkeypatch.setenv("QA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QA_INDEX", raising=False)
    return tmp_path / "home"


def gbk_file(folder: Path, name: str, extra: str = "") -> Path:
    """A GBK .txt as the browser hands it over: Gradio keeps the name in its own temp folder."""
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_bytes(f"临江新区统计公报\r\n{FACT}，同比增长12.5%。\r\n{extra}".encode("gbk"))
    return p


# ---------------------------------------------------------------- file names

@pytest.mark.parametrize("given, safe", [
    ("报告.txt", "报告.txt"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\Windows\\evil.DOCX", "evil.docx"),
    (".hidden.md", "hidden.md"),                     # the loader passes over hidden files
    ("~$lock.docx", "lock.docx"),                    # and Office lock files
    ('a<b>:c?|"*.txt', "a_b__c____.txt"),
    ("新\u202etxt.exe.pdf", "新txt.exe.pdf"),          # no bidi override tricks
    ("tab\tname\n.html", "tab_name_.html"),
    ("  spaced name .pdf  ", "spaced name .pdf"),
    ("", None), ("noext", None), (".txt", None), ("../", None), ("___.txt", None),
])
def test_safe_filename(given, safe):
    assert uploads.safe_filename(given) == safe


def test_long_names_are_cut_keeping_the_suffix():
    name = uploads.safe_filename("很长的文件名" * 40 + ".docx")
    assert name.endswith(".docx") and len(name.encode("utf-8")) <= uploads.MAX_NAME_BYTES


def test_collection_folder_names(home, tmp_path):
    from qa.paths import default_index_dir
    assert uploads.collection_name(None) == "default"
    assert uploads.collection_name(default_index_dir()) == "default"
    a, b = uploads.collection_name(tmp_path / "x" / "my index"), uploads.collection_name(tmp_path / "y" / "my index")
    assert a.startswith("my index-") and a != b                        # same name, other folder: apart
    assert uploads.collection_name(tmp_path / "..evil").startswith("evil-")
    assert uploads.upload_dir(None) == home / "uploads" / "default"


def test_upload_types_are_the_loaders():
    from qa.ingest.loaders import SUPPORTED_SUFFIXES
    assert uploads.UPLOAD_TYPES == list(SUPPORTED_SUFFIXES)


def test_save_uploads_stays_inside_the_folder(tmp_path):
    src = tmp_path / "gradio"
    good = gbk_file(src / "1", "报告.txt")
    hidden = gbk_file(src / "2", ".hidden.txt")
    exe = src / "3" / "tool.exe"
    exe.parent.mkdir()
    exe.write_bytes(b"MZ")
    outside = tmp_path / "outside.txt"
    outside.write_text("不要改我", encoding="utf-8")
    dest = tmp_path / "uploads" / "c"
    dest.mkdir(parents=True)
    (dest / "link.txt").symlink_to(outside)                             # a link left in the folder
    link_src = gbk_file(src / "4", "link.txt")

    class FileData:                                                     # what older Gradio passed
        def __init__(self, path, orig_name):
            self.path, self.orig_name = str(path), orig_name

    saved, skipped = uploads.save_uploads(
        [str(good), hidden, str(exe), FileData(good, "../../../escape.txt"), str(link_src),
         str(good)], dest)
    names = sorted(p.name for p in saved)
    assert names == ["escape.txt", "hidden.txt", "link.txt", "报告 (2).txt", "报告.txt"]
    assert all(p.parent == dest.resolve() for p in saved)
    assert skipped == [("tool.exe", "不支持的文件类型 .exe（支持：.txt .md .html .htm .pdf .docx）")]
    assert outside.read_text(encoding="utf-8") == "不要改我"              # not written through the link
    assert not (dest / "link.txt").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gradio", "outside.txt", "uploads"]
    assert not list(dest.glob(".*"))                                    # no temporary files left


# ---------------------------------------------------------------- the handler

class Progress:
    """Stands in for gr.Progress: records what the page would show."""

    def __init__(self):
        self.calls = []

    def __call__(self, value, desc=None, unit="steps"):
        self.calls.append((value, desc))


def test_upload_indexes_refreshes_and_the_chat_answers(home, tmp_path, tiny_index_copy, tiny_qa, check_citations):
    index = str(tiny_index_copy)
    before = get_pipeline(index)                                        # the page's pipeline, cached
    assert FACT[-5:] not in before.answer(QUESTION).text
    browser = tmp_path / "gradio"
    good = gbk_file(browser / "a", "临江 报告.txt")
    bad = browser / "b" / "坏.docx"
    bad.parent.mkdir(parents=True)
    bad.write_text("这不是Word文件", encoding="utf-8")
    exe = browser / "c" / "setup.exe"
    exe.parent.mkdir(parents=True)
    exe.write_bytes(b"MZ")

    progress = Progress()
    summary, pipe = uploads.add_uploads([str(good), str(bad), str(exe)], index, progress)

    folder = uploads.upload_dir(index)
    assert folder.parent == home / "uploads"
    assert [p.name for p in folder.iterdir()] == ["临江 报告.txt"]         # the unreadable one is not kept
    assert "已加入 1 个文件" in summary and "临江 报告.txt（新增）" in summary
    assert "未能加入 2 个文件" in summary and "坏.docx" in summary and "setup.exe" in summary
    assert "not a .docx file" in summary and "不支持的文件类型 .exe" in summary
    # progress: saving, reading, encoding (with a rate and the time left), reloading
    descs = [d for _, d in progress.calls]
    assert descs[0] == "保存上传的文件" and descs[-1] == "载入更新后的索引"
    encoding = [(v, d) for v, d in progress.calls if isinstance(v, tuple)]
    assert encoding and encoding[-1][0][0] == encoding[-1][0][1] > 0
    assert all("段/秒" in d and "剩余约" in d for _, d in encoding)

    # the refreshed pipeline is the one answer()/get_pipeline() now give, and it finds the new fact
    assert pipe is get_pipeline(index) and pipe is not before
    a = pipe.answer(QUESTION)
    assert a.text == "3721家" and not a.no_answer
    c = a.citations[0]
    assert Path(c.doc_id) == (folder / "临江 报告.txt").resolve()
    assert pipe.index.documents[c.doc_id].text[c.start:c.end] == c.quote
    check_citations(a, pipe.index.documents)
    for question, expected in tiny_qa:                                  # the collection kept its other files
        assert pipe.answer(question).text == expected

    # the same file again, edited: "updated", only its text encoded; unchanged: nothing encoded
    edited = gbk_file(browser / "d", "临江 报告.txt", extra="临江新区的道路总里程为482公里。\r\n")
    summary, pipe = uploads.add_uploads([str(edited)], index, Progress())
    assert "临江 报告.txt（已更新）" in summary and "更新 1 篇" in summary
    assert pipe.answer("临江新区的道路总里程是多少").text == "482公里"
    summary, same = uploads.add_uploads([str(edited)], index, None)
    assert "（内容未变）" in summary and "编码 0 段文字" in summary
    assert same is None and get_pipeline(index) is pipe               # nothing changed: nothing reloaded
    assert [p.name for p in folder.iterdir()] == ["临江 报告.txt"]


def test_nothing_readable_leaves_the_documents_and_the_folder_as_they_were(home, tmp_path, tiny_index_copy):
    from qa.index.store import load_index
    index = str(tiny_index_copy)
    before = load_index(tiny_index_copy).documents
    summary, pipe = uploads.add_uploads([], index)
    assert pipe is None and ">没有收到文件<" in summary
    bad = tmp_path / "empty.txt"
    bad.write_bytes(b"")
    summary, pipe = uploads.add_uploads([str(bad)], index)
    assert pipe is None and "未能加入 1 个文件" in summary and "empty file" in summary
    assert load_index(tiny_index_copy).documents == before
    assert not list(uploads.upload_dir(index).iterdir())


def test_the_page_wires_the_upload_to_the_chat(home, tmp_path, tiny_index_copy):
    """build_app: a multi-file upload control with the supported types; its handler
    swaps the page's pipeline, so the next question is answered from the new index."""
    gr = pytest.importorskip("gradio")
    index = str(tiny_index_copy)
    demo = app.build_app(index)
    controls = [b for b in demo.blocks.values() if isinstance(b, gr.File)]
    assert len(controls) == 1
    assert controls[0].file_count == "multiple" and set(controls[0].file_types) == set(uploads.UPLOAD_TYPES)
    fns = {f.fn.__name__: f.fn for f in demo.fns.values() if getattr(f, "fn", None)}
    summary, header, cleared = fns["upload"]([str(gbk_file(tmp_path / "g", "公报.txt"))])
    assert "已加入 1 个文件" in summary and cleared is None
    assert f"{len(get_pipeline(index).index.documents)} 篇文档" in header
    chat, turns, notice = fns["respond"](QUESTION, [])
    assert "3721家" in chat and notice == ""
    assert "公报.txt" in chat or "临江新区统计公报" in chat
