"""web.session: web.py's Session over DiskStore, the memcached ring and signed cookies."""

import datetime
import json
import os
import pickle
import stat
import time
from collections.abc import Iterator

import pytest
from support.memcached import MemcachedCluster

import webmini as web
from webmini.stores.cache import Cache
from webmini.stores.sessions import CacheStore, CookieStore, decode, encode
from webmini.testing import Browser
from webmini.webpy import session as ws
from webmini.webpy.session_stores import DiskStore, MemoryStore

COOKIE = "webpy_session_id"


@pytest.fixture(autouse=True)
def _params() -> Iterator[None]:
    saved = type(web.config.session_parameters)(web.config.session_parameters)
    yield
    web.config.session_parameters = saved


def make_app(store, initializer=None):
    urls = (
        "/login", "login",
        "/whoami", "whoami",
        "/count", "count",
        "/logout", "logout",
        "/boom", "boom",
    )
    app = web.application(urls, {})
    session = ws.Session(app, store, initializer=initializer or {"count": 0, "user": None})

    class login:
        def POST(self):
            old = session.session_id
            session.regenerate()
            session.user = web.input().user
            session.since = datetime.date(2024, 1, 2)
            return old

    class whoami:
        def GET(self):
            return json.dumps({"user": session.user, "has_user": "user" in session,
                               "since": str(session.get("since")), "ip": session.ip})

    class count:
        def GET(self):
            session.count += 1
            return str(session.count)

    class logout:
        def POST(self):
            session.kill()
            raise web.seeother("/whoami")

    class boom:
        def GET(self):
            session.count = 99
            raise RuntimeError("boom")

    app.fvars.update(login=login, whoami=whoami, count=count, logout=logout, boom=boom)
    app.session = session
    return app


def session_cookie(response):
    found = [c for c in response.headers.get_all("Set-Cookie") if c.startswith(COOKIE + "=")]
    return found[-1] if found else None


def test_diskstore_session_lifecycle(tmp_path):
    root = str(tmp_path / "sessions")
    app = make_app(DiskStore(root))
    b = Browser(app)
    assert b.get("/count").text == "1"
    cookie = session_cookie(b.get("/count"))
    assert cookie is not None
    # Secure by default: HttpOnly and SameSite=Lax; path "/" as web.py's default.
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http
    assert b.get("/count").text == "3"
    sid = b.cookies[COOKIE]
    assert len(sid) == 40 and int(sid, 16) >= 0
    # The directory is private, the file is JSON (never a pickle) and private.
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    path = os.path.join(root, sid)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    stored = json.loads(open(path).read())
    assert stored["count"] == 3 and stored["session_id"] == sid
    # Login regenerates the id; the old file is gone.
    old = b.post("/login", data={"user": "ann"}).text
    assert old == sid and b.cookies[COOKIE] != sid and not os.path.exists(path)
    who = b.get("/whoami").json()
    assert who == {"user": "ann", "has_user": True, "since": "2024-01-02", "ip": "127.0.0.1"}
    # Logout kills: file deleted, cookie expired, the next visit is a new session.
    new_sid = b.cookies[COOKIE]
    r = b.post("/logout")
    assert r.status == "303 See Other"
    assert "1970" in session_cookie(r) and COOKIE not in b.cookies
    assert not os.path.exists(os.path.join(root, new_sid))
    assert b.get("/whoami").json()["user"] is None


def test_session_cookie_secure_on_https(tmp_path):
    b = Browser(make_app(DiskStore(str(tmp_path / "s"))))
    assert "Secure" in session_cookie(b.get("/count", https=True))


def test_unknown_forged_or_traversing_ids_are_never_adopted(tmp_path):
    root = tmp_path / "s"
    app = make_app(DiskStore(str(root)))
    secret = tmp_path / "secret"
    secret.write_text('{"user": "admin"}')
    for forged in ("a" * 40, "../secret", "..%2Fsecret", "/etc/passwd", "x" * 5000, "ab\x00cd"):
        b = Browser(app)
        b.cookies[COOKIE] = forged
        assert b.get("/whoami").json()["user"] is None
        assert b.get("/count").text == "1"  # the first write makes a new session
        assert b.cookies[COOKIE] != forged and len(b.cookies[COOKIE]) == 40


def test_diskstore_refuses_symlinks_and_shared_dirs(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(ValueError, match="symlink"):
        DiskStore(str(link))
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(ValueError, match="writable"):
        DiskStore(str(shared))
    # A session file replaced by a symlink to a file the attacker controls is not read.
    store = DiskStore(str(real))
    planted = tmp_path / "planted.json"
    planted.write_text('{"user": "admin"}')
    sid = "b" * 40
    (real / sid).symlink_to(planted)
    assert sid not in store
    with pytest.raises(KeyError):
        store[sid]
    store[sid] = {"user": "me"}  # replaces the link, never writes through it
    assert planted.read_text() == '{"user": "admin"}' and store[sid]["user"] == "me"


def test_pickled_data_is_never_loaded(tmp_path):
    root = tmp_path / "s"
    store = DiskStore(str(root))

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    sid = "c" * 40
    (root / sid).write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(KeyError):
        store[sid]
    assert not (tmp_path / "pwned").exists()


def test_diskstore_expiry_and_cleanup(tmp_path):
    store = DiskStore(str(tmp_path / "s"), timeout=60)
    store["d" * 40] = {"a": 1}
    store["e" * 40] = {"a": 2}
    old = os.path.join(store.root, "d" * 40)
    past = datetime.datetime.now().timestamp() - 3600
    os.utime(old, (past, past))
    assert ("d" * 40) not in store and ("e" * 40) in store  # idle past the timeout
    store.cleanup(60)
    assert not os.path.exists(old) and os.path.exists(os.path.join(store.root, "e" * 40))


def test_json_roundtrip_keeps_common_types():
    data = {"when": datetime.datetime(2024, 1, 2, 3, 4, 5), "day": datetime.date(2024, 1, 2),
            "tags": {"a"}, "pair": (1, 2), "raw": b"\x00\xff", "user": web.storage(name="ann")}
    back = decode(encode(data))
    assert back == data and back["user"].name == "ann"
    with pytest.raises(TypeError):
        encode({"obj": object()})


def test_ignore_expiry_false_answers_expired_message(tmp_path):
    web.config.session_parameters.ignore_expiry = False
    web.config.session_parameters.expired_message = "Your session expired"
    b = Browser(make_app(MemoryStore()))
    b.cookies[COOKIE] = "f" * 40  # unknown to the store
    r = b.get("/count")
    assert r.status == "200 OK" and r.text == "Your session expired"


def test_ignore_change_ip_false_expires_on_new_ip(tmp_path):
    web.config.session_parameters.ignore_change_ip = False
    b = Browser(make_app(MemoryStore()))
    assert b.get("/count").text == "1"
    assert b.get("/count").text == "2"
    r = b.get("/count", env={"REMOTE_ADDR": "10.9.9.9"})
    assert r.text == "Session expired"


def test_error_still_saves_like_webpy(tmp_path):
    b = Browser(make_app(MemoryStore()))
    b.get("/count")
    assert b.get("/boom").status.startswith("500")
    assert b.get("/count").text == "100"


def test_session_parameters_are_used(tmp_path):
    p = web.config.session_parameters
    p.cookie_name = "sid"
    p.cookie_path = "/app"
    p.cookie_domain = "example.org"
    p.samesite = "Strict"
    b = Browser(make_app(MemoryStore()))
    r = b.get("/count")
    cookie = [c for c in r.headers.get_all("Set-Cookie") if c.startswith("sid=")][0]
    assert "Path=/app" in cookie and "Domain=example.org" in cookie and "SameSite=Strict" in cookie


def test_outside_a_request():
    s = ws.Session(None, MemoryStore())
    with pytest.raises(AttributeError):
        s.user  # noqa: B018
    assert not hasattr(s, "user")


# --- the memcached ring and the cookie store, signed with secret_key ------------------


@pytest.fixture
def cache(memcached: MemcachedCluster) -> Iterator[Cache]:
    c = Cache(memcached.addresses, socket_timeout=0.5, retry_delay=0.5)
    yield c
    c.close()


def test_signed_stores_need_a_real_secret(cache):
    with pytest.raises(ValueError, match="secret_key"):
        make_app(CacheStore(cache))
    web.config.session_parameters.secret_key = "fLjUfxqXtfNoIldA0A0J"  # web.py's public one
    with pytest.raises(ValueError, match="secret_key"):
        make_app(CookieStore())


def test_memcached_ring_store(cache):
    web.config.session_parameters.secret_key = "k" * 32
    b = Browser(make_app(CacheStore(cache, prefix="webpy:")))
    assert b.get("/count").text == "1"
    assert b.get("/count").text == "2"
    b.post("/login", data={"user": "ann"})
    assert b.get("/whoami").json()["user"] == "ann"
    # Tampering with the signed cookie gives a fresh session.
    token = b.cookies[COOKIE]
    b.cookies[COOKIE] = token[:-2] + ("00" if not token.endswith("00") else "11")
    assert b.get("/whoami").json()["user"] is None
    b.cookies[COOKIE] = token
    assert b.get("/whoami").json()["user"] == "ann"
    b.post("/logout")
    b.cookies[COOKIE] = token  # replaying the killed session's cookie
    assert b.get("/whoami").json()["user"] is None


def test_cookie_store(tmp_path):
    web.config.session_parameters.secret_key = "s" * 32
    b = Browser(make_app(CookieStore()))
    b.post("/login", data={"user": "bob"})
    assert b.get("/whoami").json()["user"] == "bob"
    web.config.session_parameters.secret_key = "t" * 32
    other = Browser(make_app(CookieStore()))
    other.cookies[COOKIE] = b.cookies[COOKIE]  # signed with another key
    assert other.get("/whoami").json()["user"] is None


def test_session_parameters_replaced_by_a_partial_dict():
    web.config.session_parameters = web.storage(cookie_name="partial_sid")
    b = Browser(make_app(MemoryStore()))
    r = b.get("/count")
    [cookie] = r.headers.get_all("Set-Cookie")
    assert cookie.startswith("partial_sid=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_diskstore_tightens_a_readable_directory(tmp_path):
    d = tmp_path / "readable"
    d.mkdir()
    os.chmod(d, 0o755)
    DiskStore(str(d))
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700


def test_responses_vary_on_cookie():
    b = Browser(make_app(MemoryStore()))
    assert b.get("/count").headers["Vary"] == "Cookie"
    assert b.post("/logout").headers["Vary"] == "Cookie"


# --- one engine: web.session is webmini.stores.sessions with web.py's names -------------


def test_web_session_cookie_is_the_engines_signed_cookie(cache):
    """Same id scheme, same signer: the engine's own Session reads web.session's cookie."""
    from webmini.stores.sessions import Session, Signer, valid_session_id

    web.config.session_parameters.secret_key = "k" * 32
    b = Browser(make_app(CacheStore(cache, prefix="webpy:")))
    b.post("/login", data={"user": "ann"})
    value = b.cookies[COOKIE]
    opened = Signer(b"k" * 32, COOKIE).verify(value, time.time(), 3600)
    assert opened is not None and valid_session_id(opened[0]) and len(opened[0]) == 40
    # The engine, set up by hand with the same store, secret and cookie name.
    app = web.application(("/who", "Who"), {})
    engine = Session(app, CacheStore(cache, prefix="webpy:"), secret="k" * 32, cookie_name=COOKIE)

    class Who:
        def GET(self):
            return json.dumps({"user": engine.get("user"), "since": str(engine.since)})

    app.fvars["Who"] = Who
    other = Browser(app)
    other.cookies[COOKIE] = value
    assert other.get("/who").json() == {"user": "ann", "since": "2024-01-02"}  # a date again


class OwnStore:
    """A store written for web.py: its interface only, no webmini base class."""

    def __init__(self):
        self.rows, self.asked, self.cleaned = {}, [], []

    def __contains__(self, key):
        self.asked.append(key)
        return key in self.rows

    def __getitem__(self, key):
        return json.loads(self.rows[key])

    def __setitem__(self, key, value):
        self.rows[key] = json.dumps(value)

    def __delitem__(self, key):
        del self.rows[key]

    def cleanup(self, timeout):
        self.cleaned.append(timeout)


def test_a_store_of_ones_own_with_web_pys_interface():
    web.config.session_parameters.cleanup_interval = 0
    store = OwnStore()
    b = Browser(make_app(store))
    assert [b.get("/count").text for _ in range(3)] == ["1", "2", "3"]
    sid = b.cookies[COOKIE]
    assert list(store.rows) == [sid] and json.loads(store.rows[sid])["count"] == 3
    assert store.cleaned and set(store.cleaned) == {86400.0}
    # SECURITY: a forged id never reaches the store; only well-formed ids are asked.
    for forged in ("../x", "a" * 5000, "zz" * 20):
        b.cookies[COOKIE] = forged
        assert b.get("/whoami").json()["user"] is None
    assert all(len(k) == 40 and int(k, 16) >= 0 for k in store.asked)
    b.cookies[COOKIE] = sid
    b.post("/logout")
    assert store.rows == {}


def test_web_session_is_the_engine_subclassed():
    from webmini.stores import sessions

    assert issubclass(ws.Session, sessions.Session)
    assert ws.SessionState is sessions.SessionState  # one state class
