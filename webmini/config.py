"""``webmini.config``: framework settings with safe defaults."""

from __future__ import annotations

import os

from webmini.storage import Storage

#: web.session's default settings. Safer than web.py's: SameSite=Lax, Secure
#: on https (None: follow the request's scheme), and no built-in secret_key
#: (web.py's is public; only the signed stores need one).
SESSION_DEFAULTS = dict(
    cookie_name="webpy_session_id",
    cookie_domain=None,
    cookie_path=None,
    samesite="Lax",
    timeout=86400,
    ignore_expiry=True,
    ignore_change_ip=True,
    secret_key=None,
    expired_message="Session expired",
    httponly=True,
    secure=None,
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
    session_parameters=Storage(SESSION_DEFAULTS),
    # Redirects send a relative Location (/x), which a forged Host header
    # cannot move; True: web.py's absolute form, for hosts in allowed_hosts only.
    absolute_redirects=False,
    allowed_hosts=(),
)
