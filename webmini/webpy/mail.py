"""``web.sendmail``: send an email over SMTP (smtplib) or the local sendmail binary.

smtplib speaks over the socket module, so once gevent has patched it a slow
mail server parks only the calling greenlet. Settings are web.py's:
``web.config.smtp_server``, ``smtp_port``, ``smtp_username``,
``smtp_password``, ``smtp_starttls`` (and ``smtp_timeout``), or
``web.config.sendmail_path`` when no SMTP server is set.
"""

from __future__ import annotations

import os
import smtplib
import subprocess
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from webmini.config import config

__all__ = ["sendmail"]


def _addresses(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [str(v) for v in value]
    return [str(value)]


def _attach(msg: EmailMessage, attachment: Any) -> None:
    if isinstance(attachment, dict):
        filename = attachment.get("filename", "attachment")
        content = attachment.get("content", b"")
        ctype = attachment.get("content_type") or "application/octet-stream"
    else:
        filename = os.path.basename(str(attachment))
        with open(attachment, "rb") as f:
            content = f.read()
        ctype = "application/octet-stream"
    maintype, _, subtype = ctype.partition("/")
    if isinstance(content, str):
        content = content.encode("utf-8")
    msg.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream",
                       filename=filename)


def build_message(from_address: str, to_address: Any, subject: str, message: str | bytes,
                  headers: dict[str, str] | None = None, *, cc: Any = None,
                  attachments: Iterable[Any] = ()) -> EmailMessage:
    """Build the message ``sendmail`` sends (Bcc is never written into it)."""
    # SECURITY: EmailMessage refuses header values containing CR or LF, so a
    # subject or address taken from a form cannot add headers (Bcc: ...).
    msg = EmailMessage()
    msg["From"] = from_address
    msg["To"] = ", ".join(_addresses(to_address))
    if cc:
        msg["Cc"] = ", ".join(_addresses(cc))
    msg["Subject"] = subject
    for name, value in (headers or {}).items():
        if name.lower() in ("from", "to", "cc", "subject", "bcc"):
            del msg[name]
            if name.lower() == "bcc":
                continue
        msg[name] = value
    body = message.decode("utf-8") if isinstance(message, bytes) else str(message)
    subtype = "html" if (headers or {}).get("Content-Type", "").startswith("text/html") else "plain"
    if "Content-Type" in msg:
        del msg["Content-Type"]
    msg.set_content(body, subtype=subtype)
    for attachment in attachments:
        _attach(msg, attachment)
    return msg


def sendmail(from_address: str, to_address: Any, subject: str, message: str | bytes,
             headers: dict[str, str] | None = None, **kw: Any) -> None:
    """Send an email (web.py's signature; ``cc=``, ``bcc=``, ``attachments=`` too)."""
    cc, bcc = kw.get("cc"), kw.get("bcc")
    hdrs = dict(headers or {})
    for key, value in list(hdrs.items()):
        if key.lower() == "bcc":
            bcc = _addresses(bcc) + _addresses(value)
    msg = build_message(from_address, to_address, subject, message, hdrs, cc=cc,
                        attachments=kw.get("attachments") or ())
    recipients = [addr for _, addr in getaddresses(
        _addresses(to_address) + _addresses(cc) + _addresses(bcc)) if addr]
    sender = getaddresses([from_address])[0][1] or from_address
    if config.get("smtp_server"):
        _send_smtp(sender, recipients, msg)
    else:
        _send_binary(sender, recipients, msg)


def _send_smtp(sender: str, recipients: list[str], msg: EmailMessage) -> None:
    server = str(config.get("smtp_server"))
    port = int(config.get("smtp_port", 0) or 0)
    timeout = float(config.get("smtp_timeout", 30))
    with smtplib.SMTP(server, port, timeout=timeout) as smtp:
        if config.get("smtp_starttls"):
            smtp.ehlo()
            smtp.starttls()
            smtp.ehlo()
        username = config.get("smtp_username")
        if username:
            smtp.login(username, config.get("smtp_password", ""))
        smtp.send_message(msg, sender, recipients)


def _send_binary(sender: str, recipients: list[str], msg: EmailMessage) -> None:
    path = config.get("sendmail_path", "/usr/sbin/sendmail")
    # SECURITY: no shell, and "--" ends the options, so an address starting
    # with "-" cannot become a sendmail flag.
    cmd = [path, "-f", sender, "--", *recipients]
    subprocess.run(cmd, input=msg.as_bytes(), check=True, timeout=60)
