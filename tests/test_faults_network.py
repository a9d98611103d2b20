"""Issue 17, item 9: answering never touches the network — checked at the system-call level.

``tests/test_security.py`` blocks Python's sockets; this runs a real ``qa ask`` (the
onnxruntime reader included) under ``strace -f`` and fails on any connect or send to a
non-loopback address, or to the name-service cache daemon (a DNS lookup in disguise).
Measured here: ``qa ask`` makes no connect/sendto/sendmsg call at all (onnxruntime's
telemetry is a Windows ETW feature; on Linux its InferenceSession opens no socket).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_INET = re.compile(r"sa_family=AF_INET6?,.*?(?:sin_addr=inet_addr\(\"([^\"]+)\"\)|inet_pton\(AF_INET6?, \"([^\"]+)\")")


def _outside(line: str) -> bool:
    if "connect(" not in line and "sendto(" not in line and "sendmsg(" not in line:
        return False
    if "AF_UNIX" in line or "AF_LOCAL" in line:
        return "nscd" in line                       # glibc asking nscd to resolve a name
    m = _INET.search(line)
    if not m:
        return "AF_INET" in line                    # an internet address we could not read: suspicious
    addr = m.group(1) or m.group(2)
    return not (addr.startswith("127.") or addr in ("::1", "::ffff:127.0.0.1"))


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install -y strace)")
def test_qa_ask_makes_no_connection_beyond_loopback(tmp_path):
    trace = tmp_path / "trace.txt"
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,execve", "-o", str(trace),
                        sys.executable, "-m", "qa", "ask", "新材料产业产值是多少"],
                       capture_output=True, cwd=ROOT, timeout=600, env=dict(os.environ))
    if r.returncode != 0 and b"ptrace" in r.stderr:
        pytest.skip(f"strace cannot trace here: {r.stderr.decode(errors='replace').strip()[:120]}")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert "604.5亿元" in r.stdout.decode("utf-8")
    calls = trace.read_text(errors="replace").splitlines()
    assert any("execve(" in ln for ln in calls), "strace recorded nothing: the trace did not work"
    outside = [ln for ln in calls if _outside(ln)]
    assert outside == [], outside


def test_the_classifier():
    assert _outside('123 connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("8.8.8.8")}, 16) = 0')
    assert not _outside('1 connect(3, {sa_family=AF_INET, sin_port=htons(7860), sin_addr=inet_addr("127.0.0.1")}, 16) = 0')
    assert _outside('1 connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT')
    assert not _outside('1 connect(3, {sa_family=AF_UNIX, sun_path="/tmp/.X11-unix/X0"}, 110) = 0')
    assert _outside('1 connect(5, {sa_family=AF_INET6, sin6_port=htons(443), '
                    'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2606:4700::1", &sin6_addr), sin6_scope_id=0}, 28) = 0')
