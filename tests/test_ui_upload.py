"""Uploading files on the chat page, without a browser: file names made safe and
kept inside ``$QA_HOME/uploads/<collection>/``, the collection updated
incrementally with progress, a summary of what was indexed and what was skipped
(with the reason), and the chat then answering from the updated index."""
from __future__ import annotations

from pathlib import Path

import pytest

import re

from qa.api import get_pipeline
from ui import app, uploads
from ui.messages import has_latin_words

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
    assert skipped == [("tool.exe", f"不支持 .exe 文件。可以上传的文件类型：{' '.join(uploads.UPLOAD_TYPES)}")]
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
    # in plain Chinese: the title added, then each file left out and why
    assert "已加入《临江新区统计公报》，可以提问了。" in summary
    assert "没有加入 2 个文件" in summary and "坏.docx：不是有效的 Word（.docx）文件" in summary
    assert f"setup.exe：不支持 .exe 文件。可以上传的文件类型：{' '.join(uploads.UPLOAD_TYPES)}" in summary
    assert not has_latin_words(re.sub(r"setup\.exe|\.\w+|Word|<[^>]*>", "", summary))     # file names apart
    assert str(home) not in summary and "/" not in re.sub(r"<[^>]*>", "", summary)
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

    # another file of the same name never replaces the one there: it is saved as 「… (2).txt」,
    # and the summary says so; the same bytes again are the file already there: nothing encoded
    edited = gbk_file(browser / "d", "临江 报告.txt", extra="临江新区的道路总里程为482公里。\r\n")
    summary, pipe = uploads.add_uploads([str(edited)], index, Progress())
    assert "已加入《临江新区统计公报》，可以提问了。" in summary
    assert "文档库里已有同名的文件，没有替换它：<ul><li>「临江 报告.txt」另存为「临江 报告 (2).txt」</li></ul>" in summary
    assert pipe.answer("临江新区的道路总里程是多少").text == "482公里"
    summary, same = uploads.add_uploads([str(edited)], index, None)
    assert "《临江新区统计公报》已在文档库中，内容没有变化。" in summary and "另存为" not in summary
    assert same is None and get_pipeline(index) is pipe               # nothing changed: nothing reloaded
    assert sorted(p.name for p in folder.iterdir()) == ["临江 报告 (2).txt", "临江 报告.txt"]
    assert FACT in (folder / "临江 报告.txt").read_bytes().decode("gbk")    # the first one as it was
    assert "482公里" not in (folder / "临江 报告.txt").read_bytes().decode("gbk")


def test_nothing_readable_leaves_the_documents_and_the_folder_as_they_were(home, tmp_path, tiny_index_copy):
    from qa.index.store import load_index
    index = str(tiny_index_copy)
    before = load_index(tiny_index_copy).documents
    summary, pipe = uploads.add_uploads([], index)
    assert pipe is None and ">没有收到文件<" in summary
    bad = tmp_path / "empty.txt"
    bad.write_bytes(b"")
    summary, pipe = uploads.add_uploads([str(bad)], index)
    assert pipe is None and "没有加入 1 个文件" in summary and "empty.txt：文件是空的" in summary
    assert load_index(tiny_index_copy).documents == before
    assert not list(uploads.upload_dir(index).iterdir())


def _page(index):
    """build_app's handlers by name, and the chat's server functions (called by ui/chat.js)."""
    gr = pytest.importorskip("gradio")
    demo = app.build_app(index)
    fns = {f.fn.__name__: f.fn for f in demo.fns.values() if getattr(f, "fn", None)}
    chat = next(b for b in demo.blocks.values() if isinstance(b, gr.HTML) and getattr(b, "server_fns", None))
    return gr, demo, fns, chat


class Visitor:
    """Stands in for gr.Request: a browser session."""

    def __init__(self, session_hash):
        self.session_hash = session_hash


def test_the_page_wires_upload_library_delete_and_chat(home, tmp_path, tiny_index_copy):
    """build_app: one multi-file upload control that takes any file (the server refuses other
    types in Chinese: the browser would refuse them in English); an upload waits in the
    visitor's staging area until 加入文档库; joining and deleting swap the page's pipeline, so
    the next question is answered from the updated index."""
    index = str(tiny_index_copy)
    gr, demo, fns, chat = _page(index)
    controls = [b for b in demo.blocks.values() if isinstance(b, gr.File)]
    assert len(controls) == 1 and controls[0].file_count == "multiple" and not controls[0].file_types
    assert all(t in controls[0].label for t in uploads.UPLOAD_TYPES)
    assert {f.__name__ for f in chat.server_fns} == {"ask", "restore", "page_image"}
    assert "3721家" not in chat.ask({"q": QUESTION})["html"]

    visitor = Visitor("s1")
    n0 = len(get_pipeline(index).index.documents)
    summary, actions, cleared = fns["upload"]([str(gbk_file(tmp_path / "g", "公报.txt"))], visitor)
    assert "已检查 1 个文件" in summary and "《临江新区统计公报》（公报.txt）" in summary and actions.visible
    assert cleared is None and len(get_pipeline(index).index.documents) == n0     # not joined yet
    summary, header, library, panel, actions = fns["join"](visitor)
    n = len(get_pipeline(index).index.documents)
    assert n == n0 + 1 and not actions.visible
    assert "已加入《临江新区统计公报》，可以提问了。" in summary
    assert f"{n} 篇文档" in header and panel.label == f"文档库（{n} 篇）"
    assert 'data-key="公报.txt"' in library and "临江新区统计公报" in library
    assert str(home) not in library and str(tiny_index_copy) not in library
    out = chat.ask({"q": QUESTION})
    assert out["ok"] and "3721家" in out["html"] and str(home) not in out["html"]
    assert "公报.txt" in out["html"]                                   # the file's name, not its folder
    restored = chat.restore({"records": [out["record"]]})
    assert restored == [out["html"]]

    # delete it: gone from the folder, the index, the library and the answers
    summary, header, library, panel = fns["delete"](gr.EventData(None, {"key": "公报.txt"}))
    assert "已删除《临江新区统计公报》" in summary and "公报.txt" not in library
    assert panel.label == f"文档库（{n - 1} 篇）"
    assert not (uploads.upload_dir(index) / "公报.txt").exists()
    assert "3721家" not in chat.ask({"q": QUESTION})["html"]
    # a saved answer citing it still shows, without the document panel
    (again,) = chat.restore({"records": [out["record"]]})
    assert "3721家" in again and "qa-doc-body" not in again.split('<details class="qa-alts"')[0]
    # deleting it again, or a path, deletes nothing
    for key in ("公报.txt", "../index/manifest.json", None):
        summary, *_ = fns["delete"](gr.EventData(None, {"key": key}))
        assert "找不到这篇文档" in summary
    assert (tiny_index_copy / "manifest.json").exists()


def test_delete_updates_the_collection_incrementally(home, tmp_path, tiny_index_copy, tiny_qa):
    from qa.index.collection import delete_document_file, list_documents
    from qa.index.store import load_index
    index = str(tiny_index_copy)
    uploads.add_uploads([str(gbk_file(tmp_path / "a", "临江.txt"))], index)
    before = {e["name"]: e for e in list_documents(load_index(tiny_index_copy))}
    assert before["临江.txt"]["passages"] >= 1 and before["临江.txt"]["chars"] > 20
    assert before["临江.txt"]["date"] and all("/" not in e["name"] for e in before.values())
    summary, pipe = uploads.delete_upload("临江.txt", index)
    assert pipe is not None and "已删除" in summary
    after = load_index(tiny_index_copy)
    assert {e["name"] for e in list_documents(after)} == set(before) - {"临江.txt"}
    assert pipe.answer(QUESTION).text != "3721家"
    for question, expected in tiny_qa:                                  # the rest stays answered
        assert pipe.answer(question).text == expected
    # the update encoded nothing: the other documents' vectors came from the cache
    report, _ = delete_document_file(tiny_index_copy, tmp_path / "not-there.txt", seeds=False)
    assert report.texts_encoded == 0 and not report.removed


def test_the_last_document_of_a_collection_is_not_deleted(home, tmp_path):
    folder = tmp_path / "one"
    idx = tmp_path / "idx"
    summary, pipe = uploads.add_uploads([str(gbk_file(folder, "唯一.txt"))], str(idx))
    assert pipe is not None or "已加入" in summary
    summary, pipe = uploads.delete_upload("唯一.txt", str(idx))
    assert pipe is None and "不能删除" in summary
    assert (uploads.upload_dir(str(idx)) / "唯一.txt").exists()


# ---------------------------------------------------------------- same names, staging (issue 17.7)

def test_a_file_of_the_same_name_is_never_replaced(tmp_path):
    folder = tmp_path / "uploads"
    first = gbk_file(tmp_path / "a", "报告.txt")
    other = gbk_file(tmp_path / "b", "报告.txt", extra="另一份文件。\r\n")
    third = gbk_file(tmp_path / "c", "报告.txt", extra="第三份文件。\r\n")
    renamed = []
    saved, skipped = uploads.save_uploads([str(first)], folder, renamed)
    assert [p.name for p in saved] == ["报告.txt"] and renamed == [] and not skipped
    saved, _ = uploads.save_uploads([str(other), str(third)], folder, renamed)
    assert [p.name for p in saved] == ["报告 (2).txt", "报告 (3).txt"]
    assert renamed == [("报告.txt", "报告 (2).txt"), ("报告.txt", "报告 (3).txt")]
    assert (folder / "报告.txt").read_bytes() == first.read_bytes()          # the first one untouched
    assert (folder / "报告 (3).txt").read_bytes() == third.read_bytes()
    # the same bytes again: the file already there, under whichever free name it got
    renamed.clear()
    saved, _ = uploads.save_uploads([str(other), str(first)], folder, renamed)
    assert [p.name for p in saved] == ["报告 (2).txt", "报告.txt"] and renamed == []
    assert sorted(p.name for p in folder.iterdir()) == ["报告 (2).txt", "报告 (3).txt", "报告.txt"]
    assert uploads.free_name("报告.txt", folder.resolve()) == ("报告 (4).txt", False)
    assert uploads.free_name("新.txt", folder.resolve()) == ("新.txt", False)
    html = app.render.render_upload_summary(["报告"], [], [], [], 3, [("<b>.txt", "<b> (2).txt")])
    assert "「&lt;b&gt;.txt」另存为「&lt;b&gt; (2).txt」" in html


def test_uploads_wait_in_the_visitors_staging_area_until_joined(home, tmp_path, tiny_index_copy):
    from qa.index.store import load_index
    index = str(tiny_index_copy)
    before = load_index(tiny_index_copy).documents
    bad = tmp_path / "g" / "坏.docx"
    bad.parent.mkdir(parents=True)
    bad.write_text("这不是Word文件", encoding="utf-8")
    summary, ready = uploads.stage_uploads([str(gbk_file(tmp_path / "g", "公报.txt")), str(bad)], "alice", index)
    assert ready == 1 and "已检查 1 个文件" in summary and "只有你看得到" in summary
    assert "坏.docx：不是有效的 Word（.docx）文件" in summary
    # nothing of the collection changed: its folder, its index, what everyone is answered from
    assert load_index(tiny_index_copy).documents == before
    assert not uploads.upload_dir(index).exists() or not list(uploads.upload_dir(index).iterdir())
    assert "3721家" not in get_pipeline(index).answer(QUESTION).text
    assert [p.name for p in uploads.staged_files("alice", index)] == ["公报.txt"]
    assert uploads.staged_files("bob", index) == []                     # another visitor sees none
    assert uploads.staging_dir("alice", index) != uploads.staging_dir("bob", index)
    assert uploads.staging_dir("alice", index).parent.parent == home / "staging"

    # a file of that name in the collection: joining will keep both, and the summary says so now
    folder = uploads.upload_dir(index)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "公报.txt").write_text("另一份公报\n内容不同。\n", encoding="utf-8")
    summary, _ = uploads.stage_uploads([], "alice", index)
    assert "没有收到文件" in summary
    assert "「公报.txt」另存为「公报 (2).txt」" in uploads.staged_summary("alice", index)
    (folder / "公报.txt").unlink()

    summary, pipe = uploads.join_staged("alice", index)
    assert "已加入《临江新区统计公报》" in summary and pipe is not None
    assert pipe.answer(QUESTION).text == "3721家"
    assert uploads.staged_files("alice", index) == [] and not uploads.staging_dir("alice", index).exists()
    summary, pipe = uploads.join_staged("alice", index)                 # nothing left: nothing done
    assert pipe is None and "没有等待加入的文件" in summary

    # discarding forgets the staged files; the collection never saw them
    uploads.stage_uploads([str(gbk_file(tmp_path / "h", "草稿.txt", extra="草稿。"))], "bob", index)
    assert "已放弃 1 个" in uploads.discard_staged("bob", index)
    assert uploads.staged_files("bob", index) == [] and "草稿.txt" not in {p.name for p in folder.iterdir()}


def test_stale_staging_areas_are_removed(home, tmp_path):
    import os
    import time
    uploads.stage_uploads([str(gbk_file(tmp_path / "a", "旧.txt"))], "old", None)
    old = uploads.staging_dir("old", None)
    past = time.time() - uploads.STAGING_TTL - 10
    os.utime(old, (past, past))
    uploads.stage_uploads([str(gbk_file(tmp_path / "b", "新.txt"))], "new", None)
    assert not old.exists() and uploads.staged_files("new", None)
