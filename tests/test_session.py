"""Sessions in the memcached ring and in signed cookies, through real apps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.memcached import MemcachedCluster

import webmini as web
from webmini.stores.cache import Cache
from webmini.stores.sessions import CacheStore, CookieStore, Session, SessionStore
from webmini.testing import Browser

SECRET = "test-secret-0123456789abcdef"
COOKIE = "webmini_session"


def make_app(store: SessionStore, secret: str = SECRET, **options: Any) -> web.application:
    """An app with login/whoami/logout/count/boom handlers and a session."""
    urls = (
        "/login", "Login",
        "/whoami", "WhoAmI",
        "/logout", "Logout",
        "/count", "Count",
        "/boom", "Boom",
        "/ctx", "CtxView",
    )
    app = web.application(urls, {})
    session = Session(app, store, initializer={"count": 0, "user": None}, secret=secret,
                      **options)

    class Login:
        def POST(self) -> Any:
            session.regenerate()
            session.user = web.input(user="").user
            raise web.seeother("/whoami")

    class WhoAmI:
        def GET(self) -> Any:
            return {"user": session.user, "id": session.session_id}

    class Logout:
        def POST(self) -> str:
            session.kill()
            return "bye"

    class Count:
        def GET(self) -> Any:
            session.count += 1
            return {"count": session.count}

    class Boom:
        def GET(self) -> Any:
            session.user = "should not be saved"
            raise RuntimeError("boom")

    class CtxView:
        def GET(self) -> Any:
            web.ctx.session.via_ctx = True
            return {"user": web.ctx.session.user}

    app.fvars.update(Login=Login, WhoAmI=WhoAmI, Logout=Logout, Count=Count, Boom=Boom,
                     CtxView=CtxView)
    app.session = session  # type: ignore[attr-defined]
    return app


@pytest.fixture
def cache(memcached: MemcachedCluster) -> Iterator[Cache]:
    c = Cache(memcached.addresses, socket_timeout=0.5, retry_delay=0.5)
    yield c
    c.close()


def set_cookie(response: Any) -> str | None:
    cookies = [c for c in response.headers.get_all("Set-Cookie") if c.startswith(COOKIE + "=")]
    return cookies[-1] if cookies else None


def test_secret_is_required(cache: Cache) -> None:
    with pytest.raises(ValueError):
        make_app(CacheStore(cache), secret="")
    with pytest.raises(ValueError):
        make_app(CacheStore(cache), secret="short")


def test_session_shared_by_two_apps_on_the_ring(cache: Cache, memcached: MemcachedCluster) -> None:
    app1 = make_app(CacheStore(cache))
    # The second instance has its own client on the same three nodes.
    app2 = make_app(CacheStore(Cache(memcached.addresses)))
    b1 = Browser(app1)
    r = b1.post("/login", data={"user": "alice"})
    assert r.status_code == 303
    cookie = set_cookie(r)
    assert cookie is not None
    attrs = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert "httponly" in attrs and "samesite=lax" in attrs and "secure" not in attrs
    b2 = Browser(app2)
    b2.cookies = dict(b1.cookies)
    assert b2.get("/whoami").json()["user"] == "alice"
    # The data is in memcached under the session id, not in the cookie.
    session_id = b2.get("/whoami").json()["id"]
    assert session_id not in ("", None) and "alice" not in b1.cookies[COOKIE]
    assert cache.get("session:" + session_id)["user"] == "alice"


def test_counts_and_only_saves_when_changed(cache: Cache) -> None:
    browser = Browser(make_app(CacheStore(cache)))
    first = browser.get("/whoami")
    assert set_cookie(first) is None  # nothing changed: no session stored, no cookie
    assert browser.cookies == {}
    assert browser.get("/count").json() == {"count": 1}
    r = browser.get("/count")
    assert r.json() == {"count": 2}
    assert set_cookie(r) is not None
    read_only = browser.get("/whoami")
    assert set_cookie(read_only) is None


def test_regenerate_changes_the_id_and_drops_the_old_one(cache: Cache) -> None:
    browser = Browser(make_app(CacheStore(cache)))
    browser.get("/count")
    before = browser.get("/whoami").json()["id"]
    old_cookie = browser.cookies[COOKIE]
    browser.post("/login", data={"user": "bob"})
    after = browser.get("/whoami").json()
    assert after["user"] == "bob"
    assert after["id"] != before
    assert cache.get("session:" + before) is None
    # The pre-login cookie is now worthless: a fresh anonymous session.
    stale = Browser(browser.app)
    stale.cookies = {COOKIE: old_cookie}
    assert stale.get("/whoami").json()["user"] is None


def test_forged_and_unknown_ids_get_fresh_sessions(cache: Cache) -> None:
    app = make_app(CacheStore(cache))
    victim = Browser(app)
    victim.post("/login", data={"user": "carol"})
    good = victim.cookies[COOKIE]
    token, issued, mac = good.rsplit(".", 2)
    forged_values = [
        "attacker-chosen-id",
        f"attacker-chosen-id.{issued}.{mac}",  # someone else's MAC
        f"{token}.{issued}.{'A' * len(mac)}",  # right id, bad MAC
        f"{token}.{int(issued) + 1}.{mac}",  # tampered issue time
        f"{token}.{issued}",
        "",
        "%C3%BC.1.x",  # non-ASCII once unquoted
    ]
    for value in forged_values:
        b = Browser(app)
        b.cookies = {COOKIE: value}
        r = b.get("/whoami")
        assert r.status_code == 200
        assert r.json()["user"] is None, value
        assert r.json()["id"] != token
    # A correctly signed id that the store does not know (expired) is fresh too.
    cache.delete("session:" + token)
    b = Browser(app)
    b.cookies = {COOKIE: good}
    fresh = b.get("/whoami").json()
    assert fresh["user"] is None and fresh["id"] != token


def test_other_secret_does_not_verify(cache: Cache) -> None:
    app = make_app(CacheStore(cache))
    other = make_app(CacheStore(cache), secret="another-secret-0123456789")
    b = Browser(app)
    b.post("/login", data={"user": "dave"})
    o = Browser(other)
    o.cookies = dict(b.cookies)
    assert o.get("/whoami").json()["user"] is None


def test_kill_expires_cookie_and_data(cache: Cache) -> None:
    browser = Browser(make_app(CacheStore(cache)))
    browser.post("/login", data={"user": "erin"})
    session_id = browser.get("/whoami").json()["id"]
    r = browser.post("/logout")
    assert r.text == "bye"
    cookie = set_cookie(r)
    assert cookie is not None and "max-age=0" in cookie.lower()
    assert COOKIE not in browser.cookies
    assert cache.get("session:" + session_id) is None


def test_unhandled_error_does_not_save(cache: Cache) -> None:
    browser = Browser(make_app(CacheStore(cache)))
    browser.post("/login", data={"user": "frank"})
    assert browser.get("/boom").status_code == 500
    assert browser.get("/whoami").json()["user"] == "frank"


def test_ctx_session_is_the_same_data(cache: Cache) -> None:
    browser = Browser(make_app(CacheStore(cache)))
    browser.post("/login", data={"user": "gina"})
    assert browser.get("/ctx").json() == {"user": "gina"}


def test_secure_flag_over_https(cache: Cache) -> None:
    browser = Browser(make_app(CacheStore(cache)))
    r = browser.request("GET", "/count", https=True)
    cookie = set_cookie(r)
    assert cookie is not None and "secure" in [a.strip().lower() for a in cookie.split(";")]
    # X-Forwarded-Proto counts only from a trusted proxy (config.trusted_proxies).
    forged = browser.get("/count", headers={"X-Forwarded-Proto": "https"})
    assert "secure" not in (set_cookie(forged) or "").lower()
    saved = web.config.get("trusted_proxies")
    web.config.trusted_proxies = "127.0.0.1"
    try:
        proxied = browser.get("/count", headers={"X-Forwarded-Proto": "https"})
    finally:
        web.config.trusted_proxies = saved
    assert "secure" in set_cookie(proxied).lower()  # type: ignore[union-attr]


def test_cache_down_gives_fresh_session_not_an_error(memcached: MemcachedCluster) -> None:
    cache = Cache(memcached.addresses, socket_timeout=0.3, retry_delay=30)
    browser = Browser(make_app(CacheStore(cache)))
    browser.post("/login", data={"user": "hank"})
    session_id = browser.get("/whoami").json()["id"]
    owner = cache.node_for("session:" + session_id)
    next(n for n in memcached.nodes if n.address == owner).kill()
    r = browser.get("/whoami")
    assert r.status_code == 200 and r.json()["user"] is None
    cache.close()


def test_cookie_store_round_trip_and_tamper() -> None:
    app = make_app(CookieStore())
    browser = Browser(app)
    browser.post("/login", data={"user": "ivy"})
    assert browser.get("/whoami").json()["user"] == "ivy"
    assert browser.get("/count").json() == {"count": 1}
    assert browser.get("/count").json() == {"count": 2}
    value = browser.cookies[COOKIE]
    token, issued, mac = value.rsplit(".", 2)
    session_id, payload = token.split(".", 1)
    # Rewrite the payload to claim another user: the MAC no longer matches.
    import base64
    import json

    forged_payload = base64.urlsafe_b64encode(
        json.dumps({"count": 0, "user": "admin"}).encode()
    ).rstrip(b"=").decode()
    b = Browser(app)
    b.cookies = {COOKIE: f"{session_id}.{forged_payload}.{issued}.{mac}"}
    assert b.get("/whoami").json()["user"] is None
    # Logout expires the cookie.
    browser.post("/logout")
    assert COOKIE not in browser.cookies


def test_regenerate_with_cookie_store_changes_id() -> None:
    browser = Browser(make_app(CookieStore()))
    browser.get("/count")
    first = browser.get("/whoami").json()["id"]
    browser.post("/login", data={"user": "jo"})
    assert browser.get("/whoami").json()["id"] != first


def test_login_with_the_store_down_is_503_not_a_fake_success(
    memcached: MemcachedCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """No node can store the session: the login answers 503 (logged), sets no cookie."""
    cache = Cache(memcached.addresses, socket_timeout=0.3, retry_delay=30)
    browser = Browser(make_app(CacheStore(cache)))
    for node in memcached.nodes:
        node.kill()
    with caplog.at_level("ERROR", logger="webmini"):
        r = browser.post("/login", data={"user": "joe"})
    assert r.status_code == 503 and r.headers.get("Retry-After") == "5"
    assert r.headers.get("Set-Cookie") is None and COOKIE not in browser.cookies
    errors = [rec for rec in caplog.records if "503" in rec.getMessage()]
    assert len(errors) == 1 and "StoreUnavailable" in errors[0].getMessage()
    # A request that changes nothing in its session still works.
    assert browser.get("/whoami").status_code == 200
    cache.close()


def test_cookie_store_keeps_dates_sets_and_tuples() -> None:
    """One codec for every store: what web.session's stores keep, the cookie keeps too."""
    import datetime

    app = web.application(("/set", "Set", "/get", "Get"), {})
    session = Session(app, CookieStore(), secret=SECRET)

    class Set:
        def GET(self) -> str:
            session.when = datetime.date(2024, 1, 2)
            session.tags = {"a"}
            session.pair = (1, 2)
            return "ok"

    class Get:
        def GET(self) -> Any:
            return repr((session.when, session.tags, session.pair))

    app.fvars.update(Set=Set, Get=Get)
    b = Browser(app)
    b.get("/set")
    assert b.get("/get").text == repr((datetime.date(2024, 1, 2), {"a"}, (1, 2)))


def test_two_sessions_on_one_app_keep_their_own_state(cache: Cache) -> None:
    app = web.application(("/", "Page"), {})
    first = Session(app, CacheStore(cache), secret=SECRET, cookie_name="one")
    second = Session(app, CookieStore(), secret=SECRET, cookie_name="two")

    class Page:
        def GET(self) -> Any:
            first.n = first.get("n", 0) + 1
            second.n = second.get("n", 0) + 10
            return {"first": first.n, "second": second.n, "ids": first.session_id != second.session_id}

    app.fvars["Page"] = Page
    b = Browser(app)
    b.get("/")
    assert b.get("/").json() == {"first": 2, "second": 20, "ids": True}
    assert set(b.cookies) == {"one", "two"}
