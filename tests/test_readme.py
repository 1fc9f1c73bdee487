"""Every Python block of README.md runs, in order, in one namespace: the guide cannot rot.

No block is skipped: one that needs a service gets the suite's private
instance. ``<!-- readme-test: replace A => B -->``
lines before a block substitute text in it before it runs (e.g. a service
address for the private instance the test starts; ``{mysql_url}`` and
``{memcached}`` in B name those); ``<!-- readme-test: setup CODE -->`` runs
one line of Python first (same placeholders); ``<!-- readme-test: fresh -->``
starts a new namespace.
Links must be absolute (or #anchors): the README is also the package index page.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

README = Path(os.environ.get("WEBMINI_README")
              or Path(__file__).resolve().parent.parent / "README.md")
_FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
_DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(\w+)\s*(.*?)\s*-->")


class Block:
    """One ```python block, with the directives written just above it."""

    def __init__(self, line: int, code: str, directives: list[tuple[str, str]]) -> None:
        self.line = line
        self.code = code
        self.directives = directives

    def __repr__(self) -> str:
        return f"README.md:{self.line}"


def blocks() -> list[Block]:
    """The README's Python blocks in order."""
    text = README.read_text()
    found = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").split("\n")
        directives = []
        while before and _DIRECTIVE.fullmatch(before[-1].strip()):
            d = _DIRECTIVE.fullmatch(before.pop().strip())
            assert d is not None
            directives.insert(0, (d.group(1), d.group(2)))
        found.append(Block(line, m.group(1), directives))
    return found


NAMESPACE: dict[str, Any] = {}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A temporary working directory; web.config as it was once the README has run."""
    import copy

    from webmini.config import config

    saved = copy.deepcopy(dict(config))
    path = tmp_path_factory.mktemp("readme")
    old = os.getcwd()
    os.chdir(path)
    yield path
    os.chdir(old)
    for key, value in saved.items():  # nested settings restored in place (shared objects)
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].clear()
            config[key].update(value)
        else:
            config[key] = value


def _fill(request: pytest.FixtureRequest, text: str) -> str:
    """Replace ``{mysql_url}`` and ``{memcached}`` with the private instances' addresses."""
    if "{mysql_url}" in text:
        text = text.replace("{mysql_url}", request.getfixturevalue("readme_mysql_url"))
    if "{memcached}" in text:
        text = text.replace("{memcached}", request.getfixturevalue("readme_memcached"))
    return text


@pytest.mark.parametrize("block", blocks(), ids=repr)
def test_readme_block_runs(block: Block, workdir: Path, request: pytest.FixtureRequest) -> None:
    code = block.code
    for name, arg in block.directives:
        if name == "fresh":
            NAMESPACE.clear()
        elif name == "setup":
            exec(_fill(request, arg), NAMESPACE)  # noqa: S102
        elif name == "replace":
            old, sep, new = arg.partition(" => ")
            assert sep and old in code, f"{block}: replace {old!r} not found"
            code = code.replace(old, _fill(request, new))
        else:
            raise AssertionError(f"{block}: unknown readme-test directive {name!r}")
    NAMESPACE.setdefault("__name__", "readme")
    exec(compile(code, f"README.md:{block.line}", "exec"), NAMESPACE)  # noqa: S102


def test_readme_has_python_blocks():
    assert len(blocks()) >= 10


def test_links_work_on_the_package_index_page():
    text = README.read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [u for u in links if not u.startswith(("https://", "http://", "#", "mailto:"))]
    assert relative == [], relative


@pytest.fixture(scope="module")
def readme_mysql_url(mariadb) -> str:
    """A mysql:// URL for the private MariaDB the suite starts."""
    return str(mariadb.url)


@pytest.fixture(scope="module")
def readme_memcached(memcached_cluster) -> str:
    """host:port of a private memcached."""
    return str(memcached_cluster.addresses[0])
