"""``qa serve`` beyond this machine (issue 17, item 7): a loud warning when the page is
bound beyond loopback without a password, and optional password protection through
Gradio's ``auth``: ``QA_PASSWORD`` (user ``qa``, or ``QA_USER``) or ``QA_PASSWORD_FILE``.

The warning is checked without ever listening beyond loopback: the port asked for is
already taken, so ``qa serve --host 0.0.0.0`` prints its warning and then fails to bind.
The login is checked in a real browser. The login form is Gradio's own, shown before the
page's settings reach the browser: Chinese in a Chinese browser (Gradio's zh-CN words), but
English in an en-US one (Gradio sends no custom translations before the login).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from qa.errors import UsageError
from ui.app import auth_from_env, exposure_warning, is_loopback

ROOT_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.5", False), ("myhost.example", False),
])
def test_what_counts_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_password_from_the_environment(tmp_path):
    assert auth_from_env({}) is None
    assert auth_from_env({"QA_PASSWORD": "s3cret"}) == ("qa", "s3cret")
    assert auth_from_env({"QA_PASSWORD": "s3cret", "QA_USER": "alice"}) == ("alice", "s3cret")
    f = tmp_path / "pw"
    f.write_text("from file\n", encoding="utf-8")
    assert auth_from_env({"QA_PASSWORD_FILE": str(f)}) == ("qa", "from file")
    f.write_text("first line\nsecond\n", encoding="utf-8")
    assert auth_from_env({"QA_PASSWORD_FILE": str(f), "QA_USER": "bob"}) == ("bob", "first line")
    for env in ({"QA_PASSWORD": "  "}, {"QA_PASSWORD_FILE": str(tmp_path / "missing")},
                {"QA_PASSWORD_FILE": str(f), "QA_PASSWORD": "x"}):
        with pytest.raises(UsageError):
            auth_from_env(env)
    f.write_text("\n", encoding="utf-8")
    with pytest.raises(UsageError, match="empty"):
        auth_from_env({"QA_PASSWORD_FILE": str(f)})


def test_the_warning_says_what_is_exposed_and_how_to_protect_it():
    assert exposure_warning("127.0.0.1", 7860, None) is None
    assert exposure_warning("0.0.0.0", 7860, ("qa", "pw")) is None
    w = exposure_warning("0.0.0.0", 7860, None)
    assert "WARNING" in w and "0.0.0.0:7860" in w and "WITHOUT A PASSWORD" in w
    assert "QA_PASSWORD" in w and "QA_PASSWORD_FILE" in w and "127.0.0.1" in w
    assert "all interfaces" in exposure_warning("", 7860, None)


def _taken_port():
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def _serve(tmp_path, *args, env=None):
    full = dict(os.environ, **ROOT_ENV, QA_HOME=str(tmp_path / "home"), **(env or {}))
    for k in ("QA_INDEX", "QA_PASSWORD", "QA_PASSWORD_FILE", "QA_USER"):
        if k not in (env or {}):
            full.pop(k, None)
    return subprocess.run([sys.executable, "-m", "qa", "serve", *args], capture_output=True, text=True,
                          env=full, timeout=300, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_serving_beyond_loopback_without_a_password_warns_loudly(tmp_path):
    pytest.importorskip("gradio", reason="gradio is not installed")
    sock, port = _taken_port()
    try:
        r = _serve(tmp_path, "--host", "0.0.0.0", "--port", str(port))
        assert r.returncode == 2 and "port is in use" in r.stderr        # it never listened
        assert "WARNING" in r.stderr and "WITHOUT A PASSWORD" in r.stderr and "QA_PASSWORD" in r.stderr
        r = _serve(tmp_path, "--host", "0.0.0.0", "--port", str(port), env={"QA_PASSWORD": "pw"})
        assert r.returncode == 2 and "WARNING" not in r.stderr
        r = _serve(tmp_path, "--port", str(port), env={"QA_PASSWORD_FILE": str(tmp_path / "nope")})
        assert r.returncode == 2 and "QA_PASSWORD_FILE" in r.stderr    # refused before anything starts
    finally:
        sock.close()


# ------------------------------------------------------------------ the login, in a browser

def test_with_a_password_the_page_asks_for_it_in_chinese(tmp_path_factory, monkeypatch):
    from test_ui_e2e import ANSWER_TIMEOUT, CHROMIUM_ARGS, Server, _chromium, _why
    if _why is not None:
        pytest.skip(f"browser test skipped: {_why}")
    from playwright.sync_api import expect, sync_playwright
    monkeypatch.setenv("QA_PASSWORD", "门-secret-7")
    monkeypatch.setenv("QA_USER", "reader")
    srv = Server(tmp_path_factory.mktemp("auth"))
    try:
        srv.wait_ready()
        # the page's own calls need the login too
        req = urllib.request.Request(srv.url + "gradio_api/component_server/", method="POST",
                                     data=json.dumps({"data": {"q": "新材料产业产值是多少"}, "component_id": 1,
                                                      "fn_name": "ask", "session_hash": "x"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        assert e.value.code in (401, 403)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
            try:
                pg = b.new_context(locale="zh-CN").new_page()
                pg.goto(srv.url)
                login = pg.get_by_role("button", name="登录")
                expect(login).to_be_visible(timeout=ANSWER_TIMEOUT)
                expect(pg.get_by_text("请输入用户名和密码。")).to_be_visible()
                user, password = pg.get_by_role("textbox", name="用户名"), pg.get_by_role("textbox", name="密码")
                user.fill("reader")
                password.fill("wrong")
                login.click()
                expect(pg.get_by_text("凭据不正确")).to_be_visible(timeout=ANSWER_TIMEOUT)
                expect(pg.locator("#qa-chat")).to_have_count(0)
                user.fill("reader")
                password.fill("门-secret-7")
                login.click()
                pg.wait_for_selector("#qa-chat[data-ready]", timeout=ANSWER_TIMEOUT)
                box = pg.locator("#qa-question textarea")
                box.fill("新材料产业产值是多少")
                box.press("Enter")
                expect(pg.locator("#qa-chat .qa-answer-text")).to_have_text("604.5亿元", timeout=ANSWER_TIMEOUT)
            finally:
                b.close()
    finally:
        srv.stop()
