"""web.sendmail against a real SMTP server (aiosmtpd in its own process on a loopback port)."""

import email
import email.policy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gevent
import pytest
from support import free_port
from support.servers import stop_process

import webmini as web


def _wait_listening(port, proc, timeout=15.0):
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the SMTP server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the SMTP server did not start")


@pytest.fixture
def smtp_server(tmp_path):
    """Start aiosmtpd with a message sink; yield (port, directory, delay setter)."""
    servers = []

    def start(delay=0.0):
        port = free_port()
        box = tmp_path / f"mail-{port}"
        box.mkdir()
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent / "support"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
             "-c", "smtp_sink.Sink", str(box), str(delay)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        servers.append(proc)
        _wait_listening(port, proc)
        return port, box

    saved = dict(web.config)
    yield start
    web.config.clear()
    web.config.update(saved)
    for proc in servers:
        stop_process(proc, 15, 5)


def _messages(box: Path):
    out = []
    for eml in sorted(box.glob("*.eml")):
        envelope = json.loads(eml.with_suffix(".json").read_text())
        out.append((envelope, email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)))
    return out


def test_sendmail_delivers_over_smtp(smtp_server):
    port, box = smtp_server()
    web.config.smtp_server = "127.0.0.1"
    web.config.smtp_port = port
    web.sendmail("Site <noreply@example.org>", ["ann@example.org", "bob@example.org"],
                 "Héllo", "Body line\nsecond", cc="carol@example.org", bcc="dave@example.org",
                 headers={"Reply-To": "help@example.org"})
    [(envelope, msg)] = _messages(box)
    assert envelope["from"] == "noreply@example.org"
    assert sorted(envelope["to"]) == ["ann@example.org", "bob@example.org", "carol@example.org",
                                      "dave@example.org"]
    assert msg["Subject"] == "Héllo"
    assert msg["To"] == "ann@example.org, bob@example.org"
    assert msg["Cc"] == "carol@example.org" and msg["Reply-To"] == "help@example.org"
    assert msg["Bcc"] is None  # the blind copy is in the envelope only
    assert msg.get_content().replace("\r\n", "\n").strip() == "Body line\nsecond"


def test_sendmail_refuses_header_injection(smtp_server):
    port, box = smtp_server()
    web.config.smtp_server = "127.0.0.1"
    web.config.smtp_port = port
    with pytest.raises(ValueError):
        web.sendmail("a@example.org", "b@example.org", "hi\r\nBcc: evil@example.org", "x")
    assert _messages(box) == []


def test_sendmail_html_and_attachment(smtp_server):
    port, box = smtp_server()
    web.config.smtp_server = "127.0.0.1"
    web.config.smtp_port = port
    web.sendmail("a@example.org", "b@example.org", "report", "<p>hi</p>",
                 headers={"Content-Type": "text/html; charset=utf-8"},
                 attachments=[{"filename": "r.csv", "content": "a,b\n", "content_type": "text/csv"}])
    [(_, msg)] = _messages(box)
    body = msg.get_body(("html",))
    assert body is not None and "<p>hi</p>" in body.get_content()
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == "r.csv" and att.get_content().replace("\r\n", "\n") == "a,b\n"


def test_sendmail_parks_only_its_greenlet(smtp_server):
    # The server waits 0.5 s before accepting each message: other greenlets
    # must keep running meanwhile (smtplib over gevent's patched sockets).
    port, box = smtp_server(delay=0.5)
    web.config.smtp_server = "127.0.0.1"
    web.config.smtp_port = port
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    t = gevent.spawn(ticker)
    try:
        senders = [gevent.spawn(web.sendmail, "a@example.org", f"u{i}@example.org", f"m{i}", "x")
                   for i in range(3)]
        gevent.joinall(senders, raise_error=True)
    finally:
        t.kill()
    assert len(_messages(box)) == 3
    # The ticker ran all along: no gap anywhere near the server's 0.5 s wait.
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) > 20 and max(gaps) < 0.25


def test_emailerrors_mails_the_traceback(smtp_server):
    from webmini.testing import TestClient

    port, box = smtp_server()
    web.config.smtp_server = "127.0.0.1"
    web.config.smtp_port = port

    class boom:
        def GET(self):
            raise KeyError("lost-key")

    app = web.application(("/boom", "boom"), {"boom": boom})
    app.internalerror = web.emailerrors("ops@example.org", web.internalerror,
                                        from_address="app@example.org")
    r = TestClient(app).get("/boom?x=1")
    assert r.status_code == 500
    [(envelope, msg)] = _messages(box)
    assert envelope["to"] == ["ops@example.org"] and envelope["from"] == "app@example.org"
    assert msg["Subject"].startswith("internal error: GET http://") and "/boom?x=1" in msg["Subject"]
    assert "KeyError: 'lost-key'" in msg.get_content()
