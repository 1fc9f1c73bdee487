"""What route names cost: the metrics processor alone, and whole requests in-process.

Prints microseconds per call (best of several repeats) for:

* ``processor``: ``Metrics.processor`` around a trivial handler, inside a
  bound request context whose matched row is set, as dispatch leaves it;
* ``static`` / ``regex``: a whole ``GET /`` (a static route, the fast path)
  and ``GET /users/4/posts/7`` (the last of 22 regex rows), access log off.

To compare two checkouts, run it from outside both with each on PYTHONPATH::

    cd /tmp && PYTHONPATH=/path/to/other/checkout python /path/to/benchmarks/observability.py
    cd /tmp && PYTHONPATH=/path/to/this/checkout python /path/to/benchmarks/observability.py
"""

from __future__ import annotations

import io
import os
import timeit
from typing import Any

os.environ["WEBMINI_ACCESS_LOG"] = "0"

import webmini as web  # noqa: E402
from webmini.ctx import RequestContext, bind, unbind  # noqa: E402
from webmini.ops.metrics import Metrics  # noqa: E402
from webmini.routing import Route  # noqa: E402


class Hello:
    def GET(self) -> str:  # noqa: N802
        return "hello"


class User:
    def GET(self, a: str, b: str) -> str:  # noqa: N802
        return "u"


def environ(path: str) -> dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "x", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http"}


def best(func: Any, number: int) -> float:
    return min(timeit.repeat(func, number=number, repeat=9)) / number * 1e6


def main() -> None:
    metrics = Metrics()
    c = RequestContext({"REQUEST_METHOD": "GET"}, None, "/users/4")
    if hasattr(type(c), "route"):  # a checkout with route names
        c.matched_route = Route("/users/([0-9]+)", User, False)
    token = bind(c)
    handler = lambda: "x"  # noqa: E731
    processor = best(lambda: metrics.processor(handler), 200_000)
    unbind(token)

    urls: list[Any] = []
    for i in range(20):
        urls += [f"/filler{i}/([0-9]+)", Hello]
    urls += ["/", Hello, "/users/([0-9]+)/posts/([0-9]+)", User]
    app = web.application(urls, {}).wsgifunc()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        return None

    static = best(lambda: app(environ("/"), start_response), 50_000)
    regex = best(lambda: app(environ("/users/4/posts/7"), start_response), 50_000)
    print(f"{web.__file__}: processor {processor:.3f} us, static {static:.3f} us, "
          f"regex {regex:.3f} us")


if __name__ == "__main__":
    main()
