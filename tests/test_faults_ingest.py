"""Faults in the input files (issue 17, items 8, 10 and 6).

* Japanese (Shift_JIS, EUC-JP) and Korean (EUC-KR) files are recognised and refused with
  their language named, instead of being indexed as GB18030/Big5 garbage;
* noise (random high bytes named .txt) is refused at once instead of being encoded;
* inside a folder, a symlink leading out of it is not followed unless ``--follow-links``;
* "too large" says the real size;
* a cap on extracted characters per document, and peak memory under 1 GB for a .docx
  of 100 MB of empty paragraphs and for a 200 MB .txt.
"""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from qa.cli import main as qa_main
from qa.errors import InputError
from qa.index.store import load_index
from qa.ingest import loaders
from qa.ingest.encoding import decode_bytes
from qa.ingest.loaders import load_paths, read_document

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

JAPANESE = ("日本語のテキストです。これは東京都の人口についての文書で、二〇二〇年の人口は約千四百万人でした。"
            "東京は日本の首都であり、政治と経済の中心地です。カタカナの言葉もたくさんあります。\n") * 3
KOREAN = ("한국어 텍스트입니다. 서울의 인구는 약 천만 명입니다. 대한민국의 수도는 서울이며 경제의 중심지입니다. "
          "오늘은 날씨가 좋습니다.\n") * 3


@pytest.mark.parametrize("text, enc, says", [(JAPANESE, "shift_jis", "Japanese text (Shift_JIS)"),
                                             (JAPANESE, "cp932", "Japanese text (Shift_JIS)"),
                                             (JAPANESE, "euc_jp", "Japanese text (EUC-JP)"),
                                             (KOREAN, "euc_kr", "Korean text (EUC-KR)")])
def test_japanese_and_korean_legacy_encodings_are_recognised(text, enc, says, tmp_path):
    p = tmp_path / "foreign.txt"
    p.write_bytes(text.encode(enc))
    with pytest.raises(InputError) as info:
        read_document(p)
    assert says in str(info.value) and "not Chinese" in str(info.value)
    report = load_paths([p])
    assert report.documents == [] and says in report.skipped[0][1]
    # the same text as UTF-8 is read as it is (the check is about mis-decoding, not language)
    p.write_text(text, encoding="utf-8")
    assert read_document(p).text == text


def test_random_high_bytes_are_refused_quickly(tmp_path):
    rng = random.Random(17)
    p = tmp_path / "noise.txt"
    p.write_bytes(bytes(rng.randrange(0xA1, 0xFF) for _ in range(50_000)))    # decodes as GB18030
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="does not look like Chinese text"):
        read_document(p)
    assert time.perf_counter() - t0 < 30


def test_the_check_never_refuses_real_chinese_text():
    """Real paragraphs in GBK and Big5, also with spaces every 2–4 characters (which makes
    GB bytes look like space-separated EUC-KR), and short snippets."""
    from qa.text.normalize import to_traditional
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    if (DATA / "drcd_dev.json").exists():
        for name, n in (("drcd_dev.json", 300), ("cmrc2018_trial.json", 200)):
            d = json.loads((DATA / name).read_text(encoding="utf-8"))
            texts += [p["context"] for a in d["data"] for p in a["paragraphs"]][:n]
    rng = random.Random(5)
    checked = 0
    for text in texts:
        for variant in (text, re.sub("(....)", r"\1 ", text), re.sub("(..)", r"\1 ", text),
                        text[(i := rng.randrange(max(1, len(text) - 40))):i + rng.choice([5, 12, 40])]):
            for s, enc in ((variant, "gbk"), (to_traditional(variant), "big5")):
                try:
                    data = s.encode(enc)
                except UnicodeEncodeError:
                    continue
                checked += 1
                try:
                    decode_bytes(data)
                except InputError as e:
                    assert "not Chinese" not in str(e) and "does not look" not in str(e), (enc, s[:60])
    # the seeds alone give ~20 encodable variants; with the public paragraphs, hundreds
    assert checked > (40 if (DATA / "drcd_dev.json").exists() else 15)


@pytest.fixture
def linked(tmp_path, tiny_docs):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "inside.txt").write_text(tiny_docs["xinghe.txt"], encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("机密\n这份文件在文件夹之外，密码是12345。\n", encoding="utf-8")
    (folder / "passwd.txt").symlink_to(outside / "secret.txt")
    (folder / "elsewhere").symlink_to(outside, target_is_directory=True)
    (folder / "sub").mkdir()
    (folder / "sub" / "alias.txt").symlink_to(folder / "inside.txt")          # inside: followed
    return folder


def test_symlinks_out_of_a_folder_are_not_followed(linked, tmp_path):
    report = load_paths([linked])
    assert [Path(d.source).name for d in report.documents] == ["inside.txt"]   # alias.txt = the same file
    notes = dict(report.notes)
    assert set(notes) == {str(linked / "passwd.txt"), str(linked / "elsewhere")}
    assert all("not followed" in n and "--follow-links" in n for n in notes.values())
    assert report.skipped == []
    followed = load_paths([linked], follow_links=True)
    assert sorted(Path(d.source).name for d in followed.documents) == ["inside.txt", "passwd.txt"]
    # named on the command line, a symlink is read: the user chose it
    assert read_document(linked / "passwd.txt").text.startswith("机密")


def test_follow_links_on_the_command_line_and_remembered(linked, tmp_path, capsys):
    index = tmp_path / "index"
    assert qa_main(["index", "--index", str(index), str(linked), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "not followed" in err
    assert not any("机密" in d.text for d in load_index(index).documents.values())
    assert qa_main(["index", "--index", str(index), str(linked), "--follow-links", "--quiet"]) == 0
    assert any("机密" in d.text for d in load_index(index).documents.values())
    assert qa_main(["index", "--index", str(index), "--quiet"]) == 0          # an update keeps following
    assert any("机密" in d.text for d in load_index(index).documents.values())
    capsys.readouterr()


@pytest.mark.parametrize("extra, shown", [(1, "200.000001 MB"), (2**19, "200.5 MB"), (2**20 * 300, "500 MB")])
def test_too_large_says_the_real_size(extra, shown, tmp_path):
    p = tmp_path / "huge.pdf"
    with open(p, "wb") as f:
        f.truncate(loaders.MAX_FILE_BYTES + extra)          # sparse: costs no disk
    (path, reason), = load_paths([p]).skipped
    assert reason == f"too large ({shown}; the limit is 200 MB)"


# --- 6. memory: a cap on characters, streamed .docx ---------------------------------------

_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
       'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
       'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
       '"/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
       'document.main+xml"/></Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
         'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
         'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _docx_bomb(path: Path, megabytes: int = 100, para: str = "<w:p/>") -> Path:
    """A valid package whose body is ``megabytes`` MB of ``para`` (193 KB zipped for <w:p/>)."""
    block = (para * (2**20 // len(para))).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT)
        z.writestr("_rels/.rels", _RELS)
        with z.open("word/document.xml", "w") as f:
            f.write(f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{_W_NS}"><w:body>'.encode())
            for _ in range(megabytes):
                f.write(block)
            f.write(b"<w:p><w:r><w:t>\xe7\xbb\x93\xe5\xb0\xbe</w:t></w:r></w:p></w:body></w:document>")
    return path


_MEASURE = """
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True, text=True, encoding="utf-8", errors="replace")
print(r.returncode)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)      # KiB on Linux
print(r.stderr.strip().replace("\\n", " | "))
"""


def _qa_index_peak(tmp_path, target: Path) -> tuple[int, float, str]:
    """(exit code, peak RSS in MB, stderr) of ``qa index`` on ``target``, in its own process."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "qa", "index", "--index",
                          str(tmp_path / "index"), str(target), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600).stdout.splitlines()
    return int(out[0]), int(out[1]) / 1024, out[2] if len(out) > 2 else ""


def test_docx_of_100_mb_of_empty_paragraphs_stops_at_the_cap_under_1_gb(tmp_path):
    bomb = _docx_bomb(tmp_path / "bomb.docx")
    assert bomb.stat().st_size < 1_000_000                     # ~200 KB on disk
    rc, peak_mb, err = _qa_index_peak(tmp_path, bomb)
    assert rc == 3, err                                        # nothing else to index
    assert "too long for one document" in err and "5,000,000 characters" in err, err
    assert peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB"
    print(f"\n  docx bomb: exit {rc}, peak RSS {peak_mb:.0f} MB")


def test_txt_of_199_mb_is_refused_before_reading_under_1_gb(tmp_path):
    big = tmp_path / "big.txt"
    block = ("星河市位于东海之滨，是一座港口城市。" * 20000 + "\n").encode("utf-8")
    with open(big, "wb") as f:
        while f.tell() + len(block) < 199 * 2**20:
            f.write(block)
    rc, peak_mb, err = _qa_index_peak(tmp_path, big)
    assert rc == 3 and "too long for one document" in err and "MB of text" in err, err
    assert peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB"
    print(f"\n  199 MB txt: exit {rc}, peak RSS {peak_mb:.0f} MB")


def test_a_streamed_docx_under_the_cap_is_read_whole(tmp_path):
    p = _docx_bomb(tmp_path / "long.docx", megabytes=1, para="<w:p><w:r><w:t>新区共有高新技术企业86家。</w:t></w:r></w:p>")
    doc = read_document(p)
    lines = doc.text.split("\n")
    assert lines[0] == "新区共有高新技术企业86家。" and lines[-1] == "结尾" and len(lines) > 10000
