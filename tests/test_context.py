"""The request context is greenlet-local under gevent and thread-local under threads."""

import threading

import gevent
import gevent.threadpool

import webmini as web
from webmini.testing import TestClient


class Echo:
    def GET(self, n):
        web.ctx.mine = n
        i = web.input(token="")
        gevent.sleep(0.01)  # let every other greenlet run in between
        # Everything this request reads must still be its own.
        return {
            "n": n,
            "mine": web.ctx.mine,
            "path": web.ctx.path,
            "token": i.token,
            "again": web.input(token="").token,
            "header": web.getheader("X-Req"),
        }


app = web.application((r"/echo/(\d+)", "Echo"), globals())


def test_one_thousand_concurrent_greenlets_never_see_each_others_context():
    client = TestClient(app)

    def one(n):
        r = client.get(f"/echo/{n}?token=t{n}", headers={"X-Req": f"h{n}"})
        return r.json()

    jobs = [gevent.spawn(one, n) for n in range(1000)]
    gevent.joinall(jobs, raise_error=True)
    for n, job in enumerate(jobs):
        assert job.value == {
            "n": str(n), "mine": str(n), "path": f"/echo/{n}",
            "token": f"t{n}", "again": f"t{n}", "header": f"h{n}",
        }


def test_real_threads_have_their_own_context():
    client = TestClient(app)
    pool = gevent.threadpool.ThreadPool(8)  # real OS threads
    ident = threading.get_ident

    def one(n):
        return client.get(f"/echo/{n}?token=t{n}").json()["token"], ident()

    results = [pool.spawn(one, n) for n in range(32)]
    values = [r.get() for r in results]
    assert [v[0] for v in values] == [f"t{n}" for n in range(32)]
    assert len({v[1] for v in values}) > 1  # really ran on several threads
    pool.kill()


def test_ctx_outside_a_request_is_a_clear_error():
    try:
        web.ctx.path
    except RuntimeError as exc:
        assert "only available while a request is served" in str(exc)
    else:
        raise AssertionError("ctx outside a request must raise")
    assert web.ctx.get("path", "none") == "none"
    assert "path" not in web.ctx


def test_context_is_released_after_the_request():
    client = TestClient(app)
    client.get("/echo/1")
    assert web.ctx.get("mine") is None
