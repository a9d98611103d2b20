"""Gradio's own words on the page (the upload box, the login form, connection messages) in
Chinese whatever the browser's language.

Gradio translates its components' text in the browser, in the browser's language: an
en-US browser gets "Drop File Here - or - Click to Upload". Custom translations given to
``launch(i18n=…)`` are looked up before Gradio's own, when written as flat dotted keys;
these are given for every language Gradio knows, so every visitor reads Chinese.
"""
from __future__ import annotations

#: The languages Gradio 6 ships translations for (its ``lang/*.json``).
GRADIO_LOCALES = ["ar", "ca", "ckb", "de", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "id", "ja",
                  "ko", "lt", "nb", "nl", "pl", "pt-BR", "pt", "ro", "ru", "sv", "ta", "th", "tr", "uk", "ur",
                  "uz", "zh-CN", "zh-TW"]

#: Gradio's keys this page can show, in Chinese.
CHINESE = {
    "upload_text.drop_file": "把文件拖到这里",
    "upload_text.click_to_upload": "点击选择文件",
    "common.or": "或",
    "common.clear": "清除",
    "common.remove": "移除",
    "common.download": "下载",
    "common.error": "出错了",
    "common.loading": "加载中",
    "common.empty": "空",
    "common.undo": "撤销",
    "common.submit": "提交",
    "common.settings": "设置",
    "common.language": "语言",
    "common.display_theme": "显示主题",
    "file.uploading": "正在上传…",
    "blocks.lost_connection": "与服务器的连接断了，正在重新连接…",
    "blocks.waiting_for_inputs": "文件还在上传，请等上传完再试。",
    "blocks.connection_can_break": "手机上切换到别的页面或锁屏时，连接可能会断开。",
    "blocks.long_requests_queue": "排队的请求很多，请稍候。",
    "status.queue_position": "排队中：第 {position} 位，共 {size} 位",
    "errors.contact_page_author": "请联系页面的管理员。",
    "errors.runtime_error": "运行出错",
    "errors.config_error": "配置有误",
    "errors.build_error": "构建有误",
    "login.login": "登录",
    "login.username": "用户名",
    "login.password": "密码",
    "login.incorrect_credentials": "用户名或密码不对",
    "login.enable_cookies": "请允许本网站使用 Cookie，否则无法登录。",
}


def translations() -> dict[str, dict[str, str]]:
    """``launch(i18n=gr.I18n(**translations()))``: the Chinese words for every language."""
    return {locale: dict(CHINESE) for locale in GRADIO_LOCALES}
