"""What the page says when something goes wrong, in plain Chinese.

The pipeline and the loaders explain failures in English for the command line
(``empty file``, ``not a .docx file (not a ZIP package)``, an index error naming
its folder and the command that fixes it). The page shows the user a Chinese
sentence instead, never a server path, an exception name or an English phrase;
the English detail goes to the server's log.
"""
from __future__ import annotations

import logging
import re

from qa.errors import IndexError_, InputError, ModelError, QAError, StorageError, UsageError

log = logging.getLogger(__name__)

#: (pattern on the loader's English reason, Chinese reason); the first match wins.
_REASONS: list[tuple[str, str]] = [
    (r"needs the \w+ package", "服务器缺少读取这种文件的组件，请联系管理员"),
    (r"not Chinese|does not look like Chinese", "看起来不是中文文本；这里只收中文文档"),
    (r"empty file", "文件是空的"),
    (r"reads empty now", "文件是空的"),
    (r"unsupported file type", "不支持这种文件类型"),
    (r"too large", "文件太大"),
    (r"too long|past the limit|over .* when unzipped", "文件太长，超出了能读取的上限"),
    (r"old Word \.doc", "这是旧版 Word（.doc）或加密的文件，请在 Word 中另存为 .docx 后再上传"),
    (r"no text in \.docx", "文件里没有文字"),
    (r"\.docx", "不是有效的 Word（.docx）文件，可能已损坏"),
    (r"PDF has no text layer", "PDF 里没有文字层（可能是扫描件），请先做文字识别（OCR）"),
    (r"encrypted PDF", "PDF 已加密，请先去掉密码"),
    (r"PDF has no pages", "PDF 没有页面"),
    (r"(damaged PDF|not a PDF)", "不是有效的 PDF 文件，可能已损坏"),
    (r"no text in HTML|cannot parse HTML", "网页里没有能读取的文字"),
    (r"binary file", "不是文本文件"),
    (r"undecodable bytes", "无法识别文件的编码（支持 UTF-8、GBK、GB18030、Big5、UTF-16）"),
    (r"permission denied", "没有读取权限"),
    (r"no such file|no longer exists", "文件已不存在"),
    (r"not enough memory", "文件太大，服务器内存不足"),
    (r"nested too deeply", "文件结构嵌套太深，无法读取"),
    (r"is a folder", "这是文件夹，不是文件"),
]


def has_latin_words(text: str) -> bool:
    """Whether ``text`` holds an English word (three Latin letters in a row)."""
    return re.search(r"[A-Za-z]{3,}", text or "") is not None


def reason_zh(reason: str) -> str:
    """A loader's (English) reason for skipping a file, in Chinese."""
    reason = str(reason or "")
    if reason and not has_latin_words(reason):
        return reason                      # already Chinese
    for pattern, zh in _REASONS:
        if re.search(pattern, reason, re.IGNORECASE):
            return zh
    log.info("no Chinese wording for the skip reason %r", reason)
    return "无法读取这个文件"


def error_zh(e: BaseException, doing: str = "回答") -> str:
    """An error met while ``doing`` something, as the page shows it. Messages already in
    Chinese (a question that is empty or too long) pass through unchanged."""
    msg = str(e)
    if isinstance(e, UsageError) and not has_latin_words(msg):
        return msg
    log.warning("%s failed: %s: %s", doing, e.__class__.__name__, msg)
    if isinstance(e, IndexError_):
        if "another 'qa index' is writing" in msg:
            return "文档库正在更新，请过一会儿再试。"
        return "文档索引无法读取（可能已损坏或已过期），请联系管理员重建索引。"
    if isinstance(e, ModelError):
        return "问答模型无法载入，请联系管理员。"
    if isinstance(e, StorageError):
        return "文档库无法写入（磁盘已满或没有写入权限），原有文档未受影响。"
    if isinstance(e, InputError):
        return reason_zh(msg)
    if isinstance(e, QAError):
        return f"{doing}时出错了，请稍后再试。"
    return f"{doing}时出错了，请稍后再试。"
