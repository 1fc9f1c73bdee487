"""Stores facing hostile input: a memcached that lies, a database URL with a bad password.

The hostile memcached is a small TCP server in this process that answers
``get`` with a scripted reply (a real memcached never sends these).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gevent.server import StreamServer

from webmini.stores.cache import FLAG_JSON, Cache
from webmini.stores.mysql import Database

REPLY: list[bytes] = [b"END\r\n"]


def _serve(sock, _addr) -> None:  # type: ignore[no-untyped-def]
    f = sock.makefile("rb")
    while True:
        line = f.readline()
        if not line:
            return
        try:
            sock.sendall(REPLY[0])
        except OSError:
            return


@pytest.fixture
def hostile() -> Iterator[Cache]:
    """A Cache whose only node answers every command with ``REPLY[0]``."""
    server = StreamServer(("127.0.0.1", 0), _serve)
    server.start()
    cache = Cache([f"127.0.0.1:{server.server_port}"], socket_timeout=2.0)
    try:
        yield cache
    finally:
        cache.close()
        server.stop()


@pytest.mark.parametrize("reply", [
    b"VALUE k 0 abc\r\nxyz\r\nEND\r\n",                      # non-numeric length
    b"VALUE k x 3\r\nxyz\r\nEND\r\n",                        # non-numeric flags
    b"VALUE k 0 -3\r\nxyz\r\nEND\r\n",                       # negative length
    b"VALUE k 0 100000000000\r\n",                           # a 100 GB value
    b"VALUE k 0 3\r\nxyzEND\r\n",                            # no CRLF after the value
    b"VALUE k %d %d\r\n%s\r\nEND\r\n" % (
        FLAG_JSON, 200_001, b"[" * 100_000 + b"1" + b"]" * 100_000),  # nested deeper than the stack
    b"VALUE k 2 3\r\nabc\r\nEND\r\n",                        # an int that is not a number
    b"garbage\r\n",
])
def test_hostile_get_replies_are_misses(hostile: Cache, reply: bytes) -> None:
    """Each reply: get() returns the default, never raises into the handler."""
    REPLY[0] = reply
    assert hostile.get("k", default="miss") == "miss"
    assert hostile.get_multi(["k"]) == {}


def test_unrequested_key_is_not_returned(hostile: Cache) -> None:
    """A VALUE for a key nobody asked for is dropped (get_multi used to raise KeyError)."""
    REPLY[0] = b"VALUE other 0 1\r\nx\r\nEND\r\n"
    assert hostile.get_multi(["k", "j"]) == {}
    assert hostile.get("k") is None


def test_hostile_stats_reply(hostile: Cache) -> None:
    """A malformed ``stats`` answer is a missing entry, not an exception."""
    REPLY[0] = b"nonsense\r\nEND\r\n"
    assert list(hostile.server_stats().values()) == [None]


@pytest.mark.parametrize("password", ["se/cret99", "abc#def", "x?y=z"])
def test_database_url_error_never_shows_the_password(password: str) -> None:
    """An unencoded '/', '#' or '?' in the password: the error names no part of it."""
    with pytest.raises(ValueError) as info:
        Database.from_url(f"mysql://app:{password}@db.internal/app")
    message = str(info.value)
    for part in (password, password[:3], password[-3:]):
        assert part not in message


def test_endless_reply_line_is_cut_off(hostile: Cache) -> None:
    """A server that never ends its line: the read stops at MAX_LINE, a miss."""
    REPLY[0] = b"VALUE " + b"k" * 100_000
    assert hostile.get("k", default="miss") == "miss"
