"""The MySQL pool's TLS settings, and a hub that never stalls on connects (private MariaDB)."""

from __future__ import annotations

import contextlib
from typing import Any

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
    db = Database(**mariadb.params(), ssl=mode, pool_size=10)

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
