"""CPU offload: the hub keeps serving while pools run the heavy work.

The end-to-end test runs a real gevent.pywsgi server (patched, in its own
process) serving a webmini app, and measures /ping latency while /heavy
burns a second of pure-Python CPU, with and without offload.
"""

from __future__ import annotations

import contextvars
import http.client
import json
import os
import signal
import subprocess
import sys
import time

import gevent
import pytest
from gevent import monkey

from webmini.realtime import offload as off

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TESTS_DIR)
real_sleep = monkey.get_original("time", "sleep")  # blocks the OS thread, releases the GIL
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def burn(seconds: float) -> dict:
    """Pure-Python CPU work for ``seconds`` (holds the GIL the whole time)."""
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        n += 1
    return {"pid": os.getpid(), "loops": n}


def fail(message: str) -> None:
    """Raise in the worker, to check the exception comes back."""
    raise KeyError(message)


def read_request_id() -> str:
    """Read a context variable (run in an offload thread)."""
    return request_id.get()


def die() -> None:
    """Kill the worker process abruptly."""
    os._exit(3)


@pytest.fixture(autouse=True)
def fresh_pools():
    """Each test starts from default settings; pools are stopped afterwards."""
    saved = vars(off._settings).copy()
    yield
    off.shutdown()
    vars(off._settings).update(saved)


class Ticker:
    """A greenlet that wakes every 10 ms; long gaps mean the hub was blocked."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.greenlet = gevent.spawn(self._run)
        gevent.sleep(0)

    def _run(self) -> None:
        while True:
            self.times.append(time.monotonic())
            gevent.sleep(0.01)

    def stop(self) -> float:
        """Stop; return the longest gap between two ticks."""
        self.greenlet.kill()
        self.times.append(time.monotonic())
        return max(b - a for a, b in zip(self.times, self.times[1:], strict=False))


# ---------------------------------------------------------------- threads


def test_thread_offload_returns_result_and_keeps_hub_free():
    calls_before = off.stats().get("thread", {}).get("calls", 0)
    ticker = Ticker()
    t0 = time.monotonic()
    jobs = [gevent.spawn(off.offload_thread, real_sleep, 0.3) for _ in range(4)]
    gevent.joinall(jobs, raise_error=True)
    elapsed = time.monotonic() - t0
    gap = ticker.stop()
    assert elapsed < 0.55  # four 0.3 s blocking calls ran side by side in threads
    assert gap < 0.1  # and the hub kept ticking meanwhile
    assert off.offload(sum, [1, 2, 3], kind="thread") == 6
    assert off.stats()["thread"]["calls"] - calls_before == 5


def test_inline_blocking_call_blocks_the_hub():
    ticker = Ticker()
    real_sleep(0.3)
    assert ticker.stop() >= 0.25  # contrast: no ticks while the thread was held


def test_thread_offload_sees_context_and_raises():
    token = request_id.set("req-42")
    try:
        assert off.offload_thread(read_request_id) == "req-42"
    finally:
        request_id.reset(token)
    with pytest.raises(KeyError, match="nope"):
        off.offload_thread(fail, "nope")


def test_thread_timeout_and_outer_timeout():
    with pytest.raises(off.OffloadTimeout, match="longer than 0.05 s"):
        off.offload_thread(real_sleep, 0.3, timeout=0.05)
    outer = gevent.Timeout(0.05)
    with pytest.raises(gevent.Timeout) as info, outer:
        off.offload_thread(real_sleep, 0.3, timeout=5)
    assert info.value is outer  # a request deadline propagates as itself


def test_backpressure_bounds_waiting_calls():
    off.configure(threads=1, max_pending=1)
    first = gevent.spawn(off.offload_thread, real_sleep, 0.3)
    gevent.sleep(0.01)
    with pytest.raises(off.OffloadTimeout, match="no free thread pool slot"):
        off.offload_thread(real_sleep, 0.01, timeout=0.05)
    first.join()
    assert first.successful()
    assert off.offload_thread(int, "7", timeout=1) == 7


def test_configure_and_kind_validation():
    with pytest.raises(ValueError):
        off.configure(processes=0)
    with pytest.raises(ValueError):
        off.configure(start_method="fork")
    with pytest.raises(ValueError, match="kind"):
        off.offload(int, "1", kind="greenlet")  # type: ignore[arg-type]


# -------------------------------------------------------------- processes


def test_process_offload_runs_elsewhere_and_keeps_hub_free():
    off.configure(processes=1)
    assert off.offload_process(os.getpid) != os.getpid()  # starts the worker
    ticker = Ticker()
    result = off.offload(burn, 0.5)
    gap = ticker.stop()
    assert result["pid"] != os.getpid() and result["loops"] > 0
    assert gap < 0.1  # the hub ticked all through the 0.5 s burn
    assert off.stats()["process"] == {"size": 1, "calls": 2, "in_flight": 0}


def test_process_exception_comes_back_with_remote_traceback():
    with pytest.raises(KeyError, match="remote") as info:
        off.offload_process(fail, "remote")
    assert "in fail" in str(info.value.__cause__)


def test_process_timeout_and_cancel_of_queued_call():
    off.configure(processes=1)
    off.offload_process(os.getpid)
    t0 = time.monotonic()
    with pytest.raises(off.OffloadTimeout, match="longer than 0.2 s"):
        off.offload_process(burn, 0.6, timeout=0.2)
    assert time.monotonic() - t0 < 0.4
    # The worker finishes the abandoned burn, then serves the next call.
    assert off.offload_process(int, "5", timeout=5) == 5


def test_unpicklable_function_fails_fast():
    import pickle

    # 3.11/3.12: PicklingError "Can't pickle <function <lambda>>"; 3.13:
    # AttributeError "Can't get local object '...<lambda>'" (wording changed).
    with pytest.raises((pickle.PicklingError, AttributeError), match=r"<lambda>"):
        off.offload_process(lambda: 1, timeout=10)


def test_broken_pool_is_replaced():
    off.configure(processes=1)
    from concurrent.futures.process import BrokenProcessPool

    with pytest.raises(BrokenProcessPool):
        off.offload_process(die, timeout=10)
    assert off.offload_process(int, "9", timeout=10) == 9


FORK_CODE = """
import sys; sys.path.insert(0, {repo!r})
from gevent import monkey; monkey.patch_all()
import json, os
from webmini.realtime import offload as off

def main():
    off.configure(processes=1)
    master_worker = off.offload_process(os.getpid)  # a pool made in the "master"
    master_pool = off._process_pool
    pid = os.fork()
    if pid == 0:
        worker = off.offload_process(os.getpid, timeout=20)
        pool = off._process_pool
        fresh = pool is not master_pool and pool.pid == os.getpid()
        off.shutdown()
        print(json.dumps({{"child_worker": worker, "fresh": fresh}}), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    again = off.offload_process(os.getpid)
    same = off._process_pool is master_pool
    off.shutdown()
    print(json.dumps({{"master_worker": master_worker, "again": again, "same": same,
                      "child": pid}}), flush=True)

if __name__ == "__main__":
    main()
"""


def test_pool_is_not_reused_after_fork(tmp_path):
    script = tmp_path / "forking_master.py"
    script.write_text(FORK_CODE.format(repo=REPO_DIR))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    child, master = (json.loads(line) for line in proc.stdout.decode().splitlines())
    assert child["fresh"] is True  # the child made its own pool...
    assert child["child_worker"] != master["master_worker"]  # ...with its own worker
    assert master["same"] is True and master["again"] == master["master_worker"]


# ------------------------------------------------------ end to end: server


def run_server() -> None:
    """Serve the latency app on 127.0.0.1:<free port> (run in a patched subprocess)."""
    import socket

    from gevent.pywsgi import WSGIServer

    import webmini as web

    class Heavy:
        def GET(self):
            return off.offload(burn, 1.0)

    class HeavyInline:
        def GET(self):
            return burn(1.0)

    class Ping:
        def GET(self):
            return "pong"

    class Stats:
        def GET(self):
            return {"server_pid": os.getpid(), **off.stats()}

    urls = ("/heavy", "Heavy", "/heavy-inline", "HeavyInline", "/ping", "Ping", "/stats", "Stats")
    app = web.application(urls, {"Heavy": Heavy, "HeavyInline": HeavyInline, "Ping": Ping,
                                 "Stats": Stats})
    off.configure(processes=1)
    off.offload(os.getpid)  # start the worker before taking requests
    listener = socket.socket()
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    server = WSGIServer(listener, app.wsgifunc(), log=None)
    gevent.signal_handler(signal.SIGTERM, server.stop)
    print(listener.getsockname()[1], flush=True)
    server.serve_forever()
    off.shutdown()


SERVER_CODE = (
    "import sys; sys.path[:0] = [{tests!r}, {repo!r}]\n"
    "from gevent import monkey; monkey.patch_all()\n"
    "import test_offload; test_offload.run_server()\n"
)


@pytest.fixture(scope="module")
def server_port():
    code = SERVER_CODE.format(tests=TESTS_DIR, repo=REPO_DIR)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=REPO_DIR)
    try:
        with gevent.Timeout(30, False):
            line = proc.stdout.readline()
        if not line.strip().isdigit():
            pytest.fail(f"latency server did not start (exit code {proc.poll()})")
        yield int(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("latency server did not stop on SIGTERM")


def get(port: int, path: str) -> tuple[float, bytes]:
    """GET over a fresh connection; return (seconds taken, body)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (path, resp.status, body[:200])
    finally:
        conn.close()
    return time.monotonic() - t0, body


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (and is not a zombie we reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read()
    except FileNotFoundError:
        return False


def test_pings_stay_fast_while_offloaded_heavy_request_runs(server_port):
    heavy = gevent.spawn(get, server_port, "/heavy")
    # Wait until the server has handed the burn to its worker process.
    deadline = time.monotonic() + 10
    while True:
        _, body = get(server_port, "/stats")
        if json.loads(body)["process"]["in_flight"] == 1:
            break
        assert time.monotonic() < deadline, "heavy request never started"
        gevent.sleep(0.005)
    latencies = [get(server_port, "/ping")[0] for _ in range(20)]
    assert not heavy.ready(), "all 20 pings must be answered while /heavy still runs"
    heavy_time, heavy_body = heavy.get(timeout=30)
    stats = json.loads(get(server_port, "/stats")[1])
    worker = json.loads(heavy_body)["pid"]
    assert worker != stats["server_pid"]
    assert heavy_time >= 1.0
    assert max(latencies) < 0.1, f"ping latencies during /heavy: {latencies}"


def test_without_offload_pings_wait_for_the_heavy_request(server_port):
    heavy = gevent.spawn(get, server_port, "/heavy-inline")
    gevent.sleep(0.2)  # the server is now burning the CPU in its hub thread
    ping_time, body = get(server_port, "/ping")
    assert body == b"pong"
    heavy_time, heavy_body = heavy.get(timeout=30)
    stats = json.loads(get(server_port, "/stats")[1])
    assert json.loads(heavy_body)["pid"] == stats["server_pid"]
    # Started 0.2 s into a 1 s burn: the ping waited for the rest of it.
    assert ping_time > 0.5, f"ping took only {ping_time:.3f} s"


# ------------------------------------------------------ end to end: uWSGI

UWSGI_APP = '''
"""Offload under uWSGI: the pool is first made in the master (no lazy-apps)."""
import os
import webmini as web
from webmini.realtime import offload as off
import test_offload

MASTER = os.getpid()
off.configure(processes=1)
MASTER_WORKER = off.offload(os.getpid)  # a pool made in the master, before the fork


class Pids:
    def GET(self):
        worker = off.offload(os.getpid)
        return {"master": MASTER, "master_worker": MASTER_WORKER, "me": os.getpid(),
                "worker": worker, "pool_pid": off._process_pool.pid}


class Heavy:
    def GET(self):
        return off.offload(test_offload.burn, 1.0)


class Ping:
    def GET(self):
        return "pong"


class Stats:
    def GET(self):
        return off.stats()


urls = ("/", "Ping", "/pids", "Pids", "/heavy", "Heavy", "/ping", "Ping", "/stats", "Stats")
application = web.application(urls, globals()).wsgifunc()
'''


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` no longer runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        gevent.sleep(0.05)
    return False


def test_uwsgi_worker_makes_its_own_pool_and_keeps_serving(start_uwsgi, tmp_path):
    from support.servers import http_get

    (tmp_path / "offload_uwsgi_app.py").write_text(UWSGI_APP)
    server = start_uwsgi(
        module="offload_uwsgi_app:application", processes=1, gevent=100,
        env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{TESTS_DIR}"},
        args=["--set", "lazy-apps=false"],  # load in the master, then fork: the case to guard
    )
    pids = http_get(server.http_port, "/pids").json()
    assert pids["me"] != pids["master"]
    assert pids["pool_pid"] == pids["me"]  # the worker did not reuse the master's pool...
    assert pids["worker"] not in (pids["master_worker"], pids["me"], pids["master"])

    # ...and its pool keeps the hub free: pings stay fast during a 1 s offloaded burn.
    heavy = gevent.spawn(http_get, server.http_port, "/heavy", 30)
    deadline = time.monotonic() + 10
    while http_get(server.http_port, "/stats").json()["process"]["in_flight"] != 1:
        assert time.monotonic() < deadline, "heavy request never started"
        gevent.sleep(0.005)
    latencies = []
    for _ in range(20):
        t0 = time.monotonic()
        assert http_get(server.http_port, "/ping").body == b"pong"
        latencies.append(time.monotonic() - t0)
    assert not heavy.ready()
    assert heavy.get(timeout=30).json()["pid"] == pids["worker"]
    assert max(latencies) < 0.1, latencies

    # A uWSGI worker that dies hard (harakiri, OOM killer) leaks no pool process.
    os.kill(pids["me"], signal.SIGKILL)
    assert wait_gone(pids["worker"], 5), "offload worker outlived its uWSGI worker"
    assert pid_alive(pids["master_worker"])  # the master's own pool is the master's business


def test_thread_timeout_covers_waiting_for_a_busy_thread():
    off.configure(threads=1, max_pending=5)
    first = gevent.spawn(off.offload_thread, real_sleep, 0.3)
    gevent.sleep(0.01)
    t0 = time.monotonic()
    with pytest.raises(off.OffloadTimeout):
        off.offload_thread(real_sleep, 0.01, timeout=0.05)
    assert time.monotonic() - t0 < 0.2
    first.join()
