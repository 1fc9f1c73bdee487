"""``webmini.config``: framework settings with safe defaults."""

from __future__ import annotations

import os as _os

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
    # Peers (addresses or networks, a list or "a,b" string) whose X-Forwarded-
    # Proto/-Host/-For headers ctx.protocol/host/ip/home follow. None by default:
    # any client can send those headers. Also read from WEBMINI_TRUSTED_PROXIES.
    trusted_proxies=_os.environ.get("WEBMINI_TRUSTED_PROXIES", ""),
    # web.session's settings (web.py's names); see SESSION_DEFAULTS.
    session_parameters=Storage(SESSION_DEFAULTS),
    # Redirects send a relative Location (/x), which a forged Host header
    # cannot move; True: web.py's absolute form, for hosts in allowed_hosts only.
    absolute_redirects=False,
    allowed_hosts=(),
)
