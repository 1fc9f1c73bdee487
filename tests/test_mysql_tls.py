"""The MySQL pool's TLS settings, and a hub that never stalls on connects (private MariaDB)."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote

import gevent
import pymysql
import pytest
from support.hubstall import hub_stall

from webmini.stores import pool as pool_module
from webmini.stores.mysql import ConnectError, Database


def test_tls_mode_defaults_follow_where_the_server_is() -> None:
    assert Database(host="127.0.0.1").ssl_mode == "disabled"
    assert Database(host="localhost").ssl_mode == "disabled"
    assert Database(host="::1").ssl_mode == "disabled"
    assert Database(unix_socket="/run/mysqld/mysqld.sock").ssl_mode == "disabled"
    # SECURITY: off the machine, the default verifies the certificate and host name.
    assert Database(host="db.example.com").ssl_mode == "verify"
    assert Database(host="10.0.0.5").ssl_mode == "verify"
    assert Database(host="10.0.0.5", ssl="required").ssl_mode == "required"
    db = Database.from_url("mysql://u:p@db.example.com/app?ssl=preferred&ssl_ca=/etc/ca.pem")
    assert (db.ssl_mode, db.ssl_ca) == ("preferred", "/etc/ca.pem")
    with pytest.raises(ValueError, match="ssl must be one of"):
        Database(ssl="yes")


def test_tls_contexts_verify_or_say_they_do_not() -> None:
    strict = pool_module.build_tls_context("verify", None)
    assert strict.check_hostname and strict.verify_mode.name == "CERT_REQUIRED"
    loose = pool_module.build_tls_context("required", None)
    assert not loose.check_hostname and loose.verify_mode.name == "CERT_NONE"


def _server_has_tls(mariadb: Any) -> bool:
    conn = mariadb.root_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW VARIABLES LIKE 'have_ssl'")
            row = cur.fetchone()
    finally:
        conn.close()
    return bool(row and row[1] == "YES")


def test_required_and_verify_refuse_a_server_without_tls(mariadb: Any) -> None:
    assert not _server_has_tls(mariadb)  # the private test server runs without TLS
    for mode in ("required", "verify"):
        db = Database(**mariadb.params(), ssl=mode, pool_size=1)
        with pytest.raises(ConnectError, match="SSL|TLS|ssl"):
            db.query("SELECT 1")
        assert db.stats().in_use == 0
        db.close()


def test_one_tls_context_per_pool(mariadb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real = pool_module.build_tls_context

    def counting(mode: str, cafile: str | None) -> Any:
        built.append(mode)
        return real(mode, cafile)

    monkeypatch.setattr(pool_module, "build_tls_context", counting)
    db = Database(**mariadb.params(), ssl="preferred", pool_size=10)
    try:
        for _ in range(2):  # a cold pool, then reconnects after close()
            jobs = [gevent.spawn(db.query, "SELECT SLEEP(0.02) AS s") for _ in range(30)]
            gevent.joinall(jobs, raise_error=True)
            db.close()
        assert db.stats().connects == 0  # fresh pool after close()
        assert built == ["preferred"]
    finally:
        db.close()


@pytest.mark.parametrize("mode", [None, "preferred", "disabled"])
def test_pool_operations_never_stall_the_hub(mariadb: Any, mode: str | None) -> None:
    db = Database(**mariadb.params(), ssl=mode, pool_size=10, pre_ping=True)

    def cold_pool_and_reconnects() -> None:
        db.close()
        jobs = [gevent.spawn(db.query, "SELECT SLEEP(0.05) AS s") for _ in range(50)]
        gevent.joinall(jobs, raise_error=True)
        # reconnects: the server drops every pooled connection; pre-ping replaces them
        ids = {row.id for row in [db.query_one("SELECT CONNECTION_ID() AS id")] if row}
        # (the test's own root connection has TLS off: pymysql's default would
        # build an SSLContext right here, the very stall this test looks for)
        root = pymysql.connect(unix_socket=mariadb.socket_path, user="root", password="",
                               autocommit=True, ssl_disabled=True)
        try:
            with root.cursor() as cur:
                cur.execute("SELECT id FROM information_schema.processlist WHERE user = %s",
                            (mariadb.user,))
                for (conn_id,) in cur.fetchall():
                    with contextlib.suppress(pymysql.err.MySQLError):  # already gone
                        cur.execute(f"KILL {int(conn_id)}")
        finally:
            root.close()
        jobs = [gevent.spawn(db.query, "SELECT 1 AS one") for _ in range(50)]
        gevent.joinall(jobs, raise_error=True)
        assert ids and db.stats().connects >= 10 and db.stats().in_use == 0

    try:
        stall = hub_stall(cold_pool_and_reconnects)
        assert stall.longest_slice < 0.005, stall  # no single step held the hub 5 ms
    finally:
        db.close()


def test_the_measure_sees_pymysqls_own_tls_setup(mariadb: Any) -> None:
    # pymysql left to itself builds an SSLContext (CA store load) per connect:
    # the stall the pool's TLS handling removes, and that the measure above catches.
    db = Database(**mariadb.params(), pool_size=10, connect_args={"ssl_disabled": False})
    try:
        stall = hub_stall(lambda: gevent.joinall(
            [gevent.spawn(db.query, "SELECT 1") for _ in range(10)], raise_error=True),
            attempts=1)
        assert stall.longest_slice > 0.005, stall
    finally:
        db.close()


# -- against a MariaDB that speaks TLS (its certificate names IP 127.0.0.1 only) ----------


def _tls_of(db: Any) -> str:
    """The cipher of the pooled connection's session ('' when it is not encrypted)."""
    row = db.query_one("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    assert row is not None
    return str(row.Value)


def test_every_mode_against_a_tls_server(mariadb_tls: Any) -> None:
    tls = mariadb_tls.tls
    for mode, encrypted in (("disabled", False), ("preferred", True), ("required", True)):
        db = Database(**mariadb_tls.params(), ssl=mode, pool_size=2)
        try:
            assert bool(_tls_of(db)) is encrypted, mode
        finally:
            db.close()
    # verify: the chain against the CA that signed the server's certificate, and the host
    db = Database(**mariadb_tls.params(), ssl="verify", ssl_ca=tls.ca, pool_size=2)
    try:
        assert _tls_of(db)
        with db.connection() as conn:
            assert conn.raw._sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        db.close()


@pytest.mark.parametrize("what", ["another CA", "the system CAs", "a host name it does not name"])
def test_verify_refuses_a_server_it_cannot_trust(mariadb_tls: Any, what: str) -> None:
    """SECURITY: ``verify`` connects to nobody whose certificate fails the chain or the name."""
    params = mariadb_tls.params()
    if what == "another CA":
        db = Database(**params, ssl="verify", ssl_ca=mariadb_tls.tls.other_ca, pool_size=1)
    elif what == "the system CAs":
        db = Database(**params, ssl="verify", pool_size=1)
    else:  # the certificate names IP 127.0.0.1; "localhost" reaches the same server
        db = Database(**{**params, "host": "localhost"}, ssl="verify",
                      ssl_ca=mariadb_tls.tls.ca, pool_size=1)
    try:
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            db.query("SELECT 1")
        assert db.stats().in_use == 0
    finally:
        db.close()


def test_tls_handshakes_never_stall_the_hub(mariadb_tls: Any) -> None:
    db = Database(**mariadb_tls.params(), ssl="verify", ssl_ca=mariadb_tls.tls.ca, pool_size=10)

    def cold_pools() -> None:
        for _ in range(2):
            db.close()  # a fresh pool: ten new TLS handshakes
            gevent.joinall([gevent.spawn(db.query, "SELECT SLEEP(0.02) AS s") for _ in range(30)],
                           raise_error=True)

    try:
        cold_pools()  # the pool's SSLContext and OpenSSL's own first-use set-up, not measured
        # A handshake's crypto runs in the hub's thread (1-2.5 ms per step measured here, more
        # on a loaded machine); what must never happen is a blocking SSLContext per connect,
        # ~25 ms (test_the_measure_sees_pymysqls_own_tls_setup).
        stall = hub_stall(cold_pools, limit=0.010)
        assert stall.longest_slice < 0.010, stall
        assert _tls_of(db)
    finally:
        db.close()


def test_web_database_urls_carry_the_tls_settings(mariadb_tls: Any) -> None:
    import webmini as web

    m = mariadb_tls
    base = f"mysql://{m.user}:{m.password}@{m.host}:{m.port}/{m.database}"
    db = web.database(f"{base}?ssl=verify&ssl_ca={quote(m.tls.ca)}")
    try:
        assert db.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")[0].Value
    finally:
        db.close()
    db = web.database(f"{base}?ssl=verify&ssl_ca={quote(m.tls.other_ca)}")
    try:
        with pytest.raises(ConnectError, match="certificate verify|CERTIFICATE_VERIFY_FAILED"):
            db.query("SELECT 1")
    finally:
        db.close()
