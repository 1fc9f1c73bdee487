"""Template rendering benchmark: webmini's Templetor against web.py 0.76's and Jinja2.

A realistic page: a layout (head, navigation, footer, a ``$var`` title)
around a table of users, each row escaped (names and notes hold ``<``, ``&``
and quotes), with a ``loop.parity`` class, a conditional cell and a number.
Two sizes: 12 rows and 1,000 rows. webmini and web.py render the very same
template files through ``render(dir, base="layout")``; Jinja2 renders the
equivalent templates with ``autoescape=True`` and ``{% extends %}``. A
third page reads each cell by a computed key (``$row[col]``) and formats a
number through a format string held in a variable (``fmt.format(x)``):
the two paths webmini's template sandbox checks at run time. The script
first checks that webmini and web.py give the same bytes.

Usage::

    .venv/bin/python benchmarks/templates.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

LAYOUT = """\
$def with (content)
<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>$content.title - Example</title>
    <link rel="stylesheet" href="/static/site.css">
</head>
<body>
    <nav>
        $for label, href in nav:
            <a href="$href">$label</a>
    </nav>
    <main>
    $:content
    </main>
    <footer>Rendered for $user</footer>
</body>
</html>
"""

PAGE = """\
$def with (rows)
$var title: Users ($len(rows))
<h1>Users</h1>
<table class="users">
    <tr><th>#</th><th>Name</th><th>Email</th><th>Note</th><th>Balance</th></tr>
    $for row in rows:
        <tr class="$loop.parity">
            <td>$row.id</td>
            <td><a href="/users/$row.id">$row.name</a></td>
            <td>$row.email</td>
            <td>$row.note</td>
            $if row.active:
                <td class="num">$row.balance</td>
            $else:
                <td class="off">closed</td>
        </tr>
</table>
"""

# Computed keys and a format string from a variable: checked at run time.
DYNAMIC = """\
$def with (rows, cols, fmt)
<table>
$for row in rows:
    <tr>
    $for col in cols:
        <td>$row[col]</td>
    <td>${fmt.format(row['balance'])}</td></tr>
</table>
"""

JINJA_DYNAMIC = """\
<table>
{%- for row in rows %}
    <tr>
    {%- for col in cols %}
        <td>{{ row[col] }}</td>
    {%- endfor %}
    <td>{{ fmt.format(row['balance']) }}</td></tr>
{%- endfor %}
</table>
"""

JINJA_LAYOUT = """\
<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>{% block title %}{% endblock %} - Example</title>
    <link rel="stylesheet" href="/static/site.css">
</head>
<body>
    <nav>
        {%- for label, href in nav %}
            <a href="{{ href }}">{{ label }}</a>
        {%- endfor %}
    </nav>
    <main>
    {% block content %}{% endblock %}
    </main>
    <footer>Rendered for {{ user }}</footer>
</body>
</html>
"""

JINJA_PAGE = """\
{% extends "layout.html" %}
{% block title %}Users ({{ rows|length }}){% endblock %}
{% block content %}
<h1>Users</h1>
<table class="users">
    <tr><th>#</th><th>Name</th><th>Email</th><th>Note</th><th>Balance</th></tr>
    {%- for row in rows %}
        <tr class="{{ 'odd' if loop.index is odd else 'even' }}">
            <td>{{ row.id }}</td>
            <td><a href="/users/{{ row.id }}">{{ row.name }}</a></td>
            <td>{{ row.email }}</td>
            <td>{{ row.note }}</td>
            {%- if row.active %}
            <td class="num">{{ row.balance }}</td>
            {%- else %}
            <td class="off">closed</td>
            {%- endif %}
        </tr>
    {%- endfor %}
</table>
{% endblock %}
"""

NAV = [("Home", "/"), ("Users", "/users"), ("Search", "/search?q=a&b=c"), ("About", "/about")]
USER = "Ann <admin>"


class Row:
    """A database row as a web.py app gets it (attribute access)."""

    __slots__ = ("id", "name", "email", "note", "active", "balance")

    def __init__(self, i: int) -> None:
        self.id = i
        self.name = f"User {i} <{'O' if i % 3 else 'X'}'Brien & Co>"
        self.email = f"user{i}@example.com"
        self.note = 'plain note' if i % 2 else 'said "hi" & <left>'
        self.active = i % 5 != 0
        self.balance = round(i * 1.25, 2)

    def record(self) -> dict[str, object]:
        """The row as a dict (``db.select`` with ``_test`` off gives Storage, a dict)."""
        return {name: getattr(self, name) for name in self.__slots__}


def _write(directory: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)
    return directory


def build(tmp: str) -> tuple[dict[str, Callable[[list[Any]], str]],
                             dict[str, Callable[[list[Any]], str]]]:
    """One render callable per engine for the layout page, and for the dynamic page."""
    import jinja2
    import web.template as webpy_template

    from webmini.webpy import template as webmini_template

    tdir = os.path.join(tmp, "templetor")
    os.makedirs(tdir)
    _write(tdir, {"layout.html": LAYOUT, "page.html": PAGE, "dynamic.html": DYNAMIC})
    globals_ = {"nav": NAV, "user": USER, "len": len}
    mini = webmini_template.render(tdir, base="layout", cache=True, globals=globals_)
    webpy = webpy_template.render(tdir, base="layout", cache=True, globals=globals_)
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"layout.html": JINJA_LAYOUT, "page.html": JINJA_PAGE,
                                  "dynamic.html": JINJA_DYNAMIC}),
        autoescape=True,
    )
    env.globals.update(nav=NAV, user=USER)
    jpage = env.get_template("page.html")
    jdynamic = env.get_template("dynamic.html")
    cols, fmt = ("id", "name", "email", "note"), "{:,.2f}"
    mini_plain = webmini_template.render(tdir, cache=True)
    webpy_plain = webpy_template.render(tdir, cache=True)
    return {
        "webmini": lambda rows: str(mini.page(rows)),
        "web.py": lambda rows: str(webpy.page(rows)),
        "jinja2": lambda rows: jpage.render(rows=rows),
    }, {
        "webmini": lambda rows: str(mini_plain.dynamic(rows, cols, fmt)),
        "web.py": lambda rows: str(webpy_plain.dynamic(rows, cols, fmt)),
        "jinja2": lambda rows: jdynamic.render(rows=rows, cols=cols, fmt=fmt),
    }


def rate(render: Callable[[list[Any]], str], rows: list[Any], seconds: float) -> float:
    """Renders per CPU second over about ``seconds`` of this process's CPU time.

    CPU time, not wall time: on a shared machine a descheduled process
    would otherwise be charged for other processes' work.
    """
    n = 0
    batch = max(1, int(2000 / len(rows)))
    gc.collect()
    start = time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            render(rows)
        n += batch
        now = time.process_time()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    """Run the benchmark and print a table of renders/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter rounds")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    rounds, seconds = (3, 0.3) if args.quick else (7, 0.6)

    with tempfile.TemporaryDirectory() as tmp:
        engines, dynamic = build(tmp)
        cases: list[tuple[str, dict[str, Callable[[list[Any]], str]], list[Any]]] = []
        for size in (12, 1000):
            rows = [Row(i) for i in range(1, size + 1)]
            mini, webpy = engines["webmini"](rows), engines["web.py"](rows)
            assert mini == webpy, "webmini and web.py disagree"
            assert "&lt;X&#39;Brien &amp; Co&gt;" in mini and mini.count("<tr class=") == size
            cases.append((f"layout + table of {size} rows", engines, rows))
        records = [Row(i).record() for i in range(1, 1001)]
        mini, webpy = dynamic["webmini"](records), dynamic["web.py"](records)
        assert mini == webpy, "webmini and web.py disagree"
        assert "<td>1,250.00</td>" in mini and mini.count("<tr>") == 1000
        cases.append(("`$row[col]`, `fmt.format()`: 1000 rows", dynamic, records))
        results: dict[str, dict[str, float]] = {}
        for label, renders, rows in cases:
            best: dict[str, float] = dict.fromkeys(renders, 0.0)
            for _ in range(rounds):  # interleaved rounds: load shifts hit all engines alike
                for name, render in renders.items():
                    best[name] = max(best[name], rate(render, rows, seconds))
            results[label] = best

    versions = {d: importlib.metadata.version(d) for d in ("web.py", "jinja2")}
    print(f"Python {platform.python_version()}, web.py {versions['web.py']}, "
          f"Jinja2 {versions['jinja2']}; best of {rounds} rounds of {seconds} CPU s; renders per CPU second")
    print("| page | webmini | web.py | jinja2 | webmini/web.py | webmini/jinja2 |")
    print("|---|---|---|---|---|---|")
    for label, best in results.items():
        print(f"| {label} | {best['webmini']:,.0f} | {best['web.py']:,.0f} | "
              f"{best['jinja2']:,.0f} | {best['webmini'] / best['web.py']:.2f}x | "
              f"{best['webmini'] / best['jinja2']:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "versions": versions}, f, indent=2)


if __name__ == "__main__":
    main()
