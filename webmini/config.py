"""``webmini.config``: framework settings with safe defaults."""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

from webmini.storage import Storage

#: ``secret_key``'s default: random, made once per process. web.py's default is
#: a constant published in its source (anyone can sign with it); this one is
#: secret, but differs between workers and after a restart, so tokens and
#: signed cookies made with it do not survive either: set a real one.
GENERATED_SECRET = secrets.token_hex(32)
_warned: list[bool] = []


class SessionParameters(Storage):
    """``web.config.session_parameters``: warns once when the generated ``secret_key`` is read."""

    __slots__ = ()

    def __getattribute__(self, key: str) -> Any:
        value = Storage.__getattribute__(self, key)
        if key == "secret_key" and value is GENERATED_SECRET:
            warn_generated_secret()
        return value

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if key == "secret_key" and value is GENERATED_SECRET:
            warn_generated_secret()
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """``dict.get``, with the same warning."""
        value = dict.get(self, key, default)
        if key == "secret_key" and value is GENERATED_SECRET:
            warn_generated_secret()
        return value


def warn_generated_secret() -> None:
    """Log, once per process, that ``secret_key`` is the generated per-process one."""
    if not _warned:
        _warned.append(True)
        logging.getLogger("webmini.config").warning(
            "web.config.session_parameters.secret_key is not set: using a random key made "
            "for this process; tokens signed with it fail in other workers and after a "
            "restart. Set it (secrets.token_urlsafe(32)), the same for every worker")


#: web.session's default settings. Safer than web.py's: SameSite=Lax, Secure
#: on https (None: follow the request's scheme), and a random per-process
#: secret_key instead of web.py's public one (see GENERATED_SECRET).
SESSION_DEFAULTS = dict(
    cookie_name="webpy_session_id",
    cookie_domain=None,
    cookie_path=None,
    samesite="Lax",
    timeout=86400,
    ignore_expiry=True,
    ignore_change_ip=True,
    secret_key=GENERATED_SECRET,
    expired_message="Session expired",
    httponly=True,
    secure=None,
    # webmini: sessions idle past ``timeout`` are deleted at most this often
    # (seconds; web.py: once per ``timeout``, i.e. a day).
    cleanup_interval=60,
)

config = Storage(
    # Debug pages show tracebacks to the client: never guessed, only when asked.
    debug=False,
    # Set by the dev server's --reload: templates then recompile when their
    # file changes (as with debug); otherwise a compiled template is never
    # checked against its file again.
    reload=False,
    # Largest request body read by data()/input()/json(), in bytes (413 beyond).
    max_body_size=10 * 1024 * 1024,
    # Most fields in a query string or form body, and parts in a multipart body.
    max_form_fields=1000,
    # Largest request line plus headers the dev server accepts (431 beyond).
    max_header_size=16 * 1024,
    # Multipart parts above this size spill from memory to a temporary file.
    multipart_spool_size=64 * 1024,
    # Total memory multipart fields may use before the request is refused.
    multipart_memory_limit=8 * 1024 * 1024,
    # Seconds a greenlet may hold the event loop before the monitor logs it
    # (None: monitor only in debug; see webmini.serving.green.start_monitor).
    max_blocking_time=None,
    # Content-Type given to str/bytes responses that set none.
    default_content_type="text/html; charset=utf-8",
    # One access-log line per request on the "webmini.access" logger, the
    # same on every server (webmini.logs.AccessLog); False turns it off, as
    # does WEBMINI_ACCESS_LOG=0 in the environment (e.g. when nginx logs).
    access_log=os.environ.get("WEBMINI_ACCESS_LOG", "1").lower() not in ("0", "false", "off", "no"),
    # str.format template of that line (None: webmini.logs.ACCESS_FORMAT);
    # fields: client method path status bytes duration_ms request_id
    # user_agent referer protocol.
    access_log_format=None,
    # Request header whose id is taken (when well-formed) or made, sent back
    # and put on every log record of the request (%(request_id)s).
    request_id_header="X-Request-ID",
    # How HTTPError bodies are rendered: "text", "json" (RFC 9457 problem
    # details) or "auto" (JSON when Accept prefers it); see webmini.problem.
    error_format="text",
    # f(error, environ) -> (content_type, body) or None: replaces the above.
    error_renderer=None,
    # web.json() answers 415 unless the Content-Type is JSON.
    json_strict=False,
    # reporter(exc_info, ctx, stage) callables told of every unhandled exception
    # (request, streamed body, WebSocket event); see webmini.reporting.
    error_reporters=[],
    # True: an unhandled exception is raised out of the application after the
    # reporters ran, instead of becoming the 500 (tests, APM middleware).
    propagate_exceptions=False,
    # Level of the root logger webmini sets up when the app configured none.
    log_level="INFO",
    # Peers (addresses or networks, a list or "a,b" string) whose X-Forwarded-
    # Proto/-Host/-For headers ctx.protocol/host/ip/home follow. None by default:
    # any client can send those headers. Also read from WEBMINI_TRUSTED_PROXIES.
    trusted_proxies=os.environ.get("WEBMINI_TRUSTED_PROXIES", ""),
    # web.session's settings (web.py's names); see SESSION_DEFAULTS.
    session_parameters=SessionParameters(SESSION_DEFAULTS),
    # Redirects send a relative Location (/x), which a forged Host header
    # cannot move; True: web.py's absolute form, for hosts in allowed_hosts only.
    absolute_redirects=False,
    # Host names this app answers to (Django's ALLOWED_HOSTS: "app.example",
    # ".app.example" for subdomains too, "*"; a list or "a,b" string): any other
    # Host, or trusted X-Forwarded-Host, is a 400 before any handler
    # (webmini.hosts). Empty: any well-formed Host. Also read from
    # WEBMINI_ALLOWED_HOSTS; set it in production.
    allowed_hosts=os.environ.get("WEBMINI_ALLOWED_HOSTS", ""),
    # Longest PATH_INFO routed, in characters (414 beyond): route regexes run
    # in the event loop, so a path is bounded before any of them sees it.
    max_path_length=2048,
)
