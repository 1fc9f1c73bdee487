"""The package layout keeps its promises: the core loads no wing and no third-party
package but multipart, and web.py's names still resolve lazily."""

import ast
import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import webmini

ROOT = Path(__file__).resolve().parent.parent
WINGS = ("serving", "stores", "realtime", "ops", "webpy", "contrib")


def _fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter (no gevent patching); return what it prints as JSON."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_import_webmini_loads_no_wing_and_no_third_party_package_but_multipart():
    seen = _fresh("""
        import json, sys
        before = set(sys.modules)
        import webmini as web
        app = web.application(("/", "x"), {})
        print(json.dumps(sorted(set(sys.modules) - before)))
    """)
    wings = [m for m in seen if m.split(".")[:2] in [["webmini", w] for w in WINGS]]
    assert wings == [], wings
    stdlib = set(sys.stdlib_module_names)
    third_party = sorted({m.split(".")[0] for m in seen} - stdlib - {"webmini", "multipart"})
    # "_"-prefixed names are the stdlib's C parts (_json, _contextvars...).
    assert [m for m in third_party if not m.startswith("_")] == [], third_party


def test_web_py_names_and_wing_names_still_resolve():
    seen = _fresh("""
        import json, sys
        import webmini as web
        exec("from webmini import *", {})  # __all__ must import without extras
        ok = {"star_import_loads_no_wing": not any(
            m.startswith(("webmini.realtime", "webmini.stores", "webmini.serving"))
            for m in sys.modules)}
        names = ["WebSocket", "application", "ctx", "seeother", "HTTPError", "storage"]
        ok.update({n: hasattr(web, n) for n in names})
        print(json.dumps(ok))
    """)
    assert all(seen.values()), seen


def test_every_wing_says_what_it_holds():
    for wing in WINGS:
        doc = (ROOT / "webmini" / wing / "__init__.py").read_text()
        assert doc.startswith('"""') and len(doc) > 60, wing
        init = __import__(f"webmini.{wing}", fromlist=["_"])
        for line in (init.__doc__ or "").splitlines():
            line = line.strip()
            if line.startswith("- ``") and "``:" in line:
                module = line[4:line.index("``:")]
                # A module found by name: a file, or web.py's name for one in webpy/.
                assert importlib.util.find_spec(f"webmini.{wing}.{module}"), (wing, module)


def test_no_core_module_is_over_600_lines():
    core = sorted((ROOT / "webmini").glob("*.py"))
    assert len(core) > 10
    for path in core:
        assert len(path.read_text().splitlines()) <= 600, path
    assert Path(webmini.__file__).parent == ROOT / "webmini"


def test_a_missing_extra_names_the_pip_line():
    from webmini._extras import require

    try:
        with require("mysql", "webmini.stores.mysql"):
            import no_such_driver_here  # noqa: F401
    except ImportError as exc:
        assert str(exc) == "webmini.stores.mysql needs no_such_driver_here: pip install webmini[mysql]"
    else:
        raise AssertionError("no ImportError")
    try:
        with require("memcache", "webmini.stores.cache"):
            raise ImportError("No module named 'memcache'", name="memcache")
    except ImportError as exc:
        assert "needs python-memcached: pip install webmini[memcache]" in str(exc)


def test_importing_the_dev_server_patches_nothing():
    seen = _fresh("""
        import json, sys
        import webmini.serving.devserver
        import webmini.serving.uwsgi as adapter
        ran = []
        adapter.in_every_worker(lambda: ran.append(1))  # outside uWSGI: now
        print(json.dumps({"monkey": "gevent.monkey" in sys.modules, "gevent": "gevent" in sys.modules,
                          "worker": adapter.worker_id(), "ran": ran}))
    """)
    assert seen == {"monkey": False, "gevent": False, "worker": 0, "ran": [1]}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function (absolute names)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_stores_never_import_webpy_and_the_core_imports_neither():
    stores = _modules(ROOT / "webmini" / "stores")
    assert len(stores) > 5
    for path in stores:
        bad = [m for m in _imports(path) if _under(m, "webmini.webpy") or _under(m, "webmini.contrib")]
        assert bad == [], (path, bad)
    for path in sorted((ROOT / "webmini").glob("*.py")):
        bad = [m for m in _imports(path)
               if _under(m, "webmini.stores") or _under(m, "webmini.webpy")]
        assert bad == [], (path, bad)


def test_webpy_holds_no_driver_and_no_second_engine():
    drivers = ("sqlite3", "pg8000", "pymysql", "MySQLdb", "psycopg2", "memcache", "scramp")
    webpy = _modules(ROOT / "webmini" / "webpy")
    assert len(webpy) > 10
    for path in webpy:
        bad = [m for m in _imports(path) if m.split(".")[0] in drivers]
        assert bad == [], (path, bad)
    # The drivers web.database runs on live in stores/, next to the pool they share.
    for module in ("backend", "sqlite", "postgres", "mysql", "pool"):
        assert (ROOT / "webmini" / "stores" / f"{module}.py").exists(), module
    assert not (ROOT / "webmini" / "webpy" / "_dbconn.py").exists()


def test_web_contrib_template_is_the_webpy_module_under_web_pys_name():
    seen = _fresh("""
        import json, sys
        import webmini.contrib.template as by_webpy_name
        from webmini.contrib.template import render_jinja
        import webmini.webpy.contrib.template as home
        print(json.dumps({"same": by_webpy_name is home, "class": render_jinja is home.render_jinja,
                          "jinja_loaded": "jinja2" in sys.modules}))
    """)
    assert seen == {"same": True, "class": True, "jinja_loaded": False}


def test_one_session_engine():
    """web.session is a layer: no id scheme, signer or HMAC of its own."""
    for name in ("session.py", "session_stores.py"):
        found = _imports(ROOT / "webmini" / "webpy" / name)
        assert not found & {"hmac", "hashlib", "secrets", "pickle"}, (name, found)
    from webmini.stores import sessions
    from webmini.webpy import session

    assert issubclass(session.Session, sessions.Session)
def test_timed_tests_named_in_the_overlap_list_exist() -> None:
    """tests/support/overlap.py's TIMED names tests that exist (a renamed test would overlap)."""
    from support.overlap import TIMED

    tests = Path(__file__).resolve().parent
    missing = []
    for entry in sorted(TIMED):
        file, name = entry.split("::")
        if not re.search(rf"^def {name}\(", (tests / file).read_text(), re.M):
            missing.append(entry)
    assert missing == []


def test_every_wing_module_is_named_in_its_wing_docstring() -> None:
    """A wing's docstring names every module in it as ``name`` (a reader's map stays whole).

    A sub-package (webpy/templetor) is named by its wing, its modules by its own docstring.
    """
    missing = []
    for wing in WINGS:
        for path in sorted((ROOT / "webmini" / wing).rglob("*.py")):
            if path.name == "__init__.py":
                path = path.parent  # named by the package above it
            if path.parent == ROOT / "webmini":
                continue  # the wing itself
            init = path.parent / "__init__.py"
            doc = ast.get_docstring(ast.parse(init.read_text())) or ""
            if f"``{path.stem}``" not in doc:
                missing.append(str(path.relative_to(ROOT)))
    assert missing == []


def test_a_typo_on_webmini_imports_nothing() -> None:
    """``hasattr(web, "typo")`` is False and loads no module: web.py's names are a fixed map."""
    seen = _fresh("""
        import json, sys
        import webmini as web
        before = set(sys.modules)
        typo = hasattr(web, "tempalte")
        print(json.dumps([typo, sorted(set(sys.modules) - before)]))
    """)
    assert seen == [False, []]


def test_webpy_name_map_matches_the_modules() -> None:
    """_webpy_alias.WEBPY_EXPORTS lists each web.py module's ``__all__`` (first module wins)."""
    import importlib

    from webmini import _webpy_alias

    expected: dict[str, set[str]] = {}
    owner: dict[str, str] = {}
    for module in _webpy_alias.WEBPY_MODULES:
        names = getattr(importlib.import_module(f"webmini.webpy.{module}"), "__all__", ())
        for name in names:
            if name not in owner:
                owner[name] = module
                expected.setdefault(module, set()).add(name)
    got = {module: set(names) for module, names in _webpy_alias.WEBPY_EXPORTS.items() if names}
    assert got == expected


def test_modules_behind_same_named_objects_are_reachable_by_name() -> None:
    """``web.config``/``web.ctx``/``web.storage`` are web.py's objects; the modules stay reachable.

    ``import webmini.config as m`` binds the attribute (the settings object),
    as Python looks the name up on the package first; the module itself is
    ``sys.modules["webmini.config"]`` and ``importlib.import_module("webmini.config")``.
    """
    import importlib
    import types

    from webmini.config import config
    from webmini.ctx import ctx
    from webmini.storage import Storage, storage

    for name, obj in (("config", config), ("ctx", ctx), ("storage", storage)):
        module = importlib.import_module(f"webmini.{name}")
        assert isinstance(module, types.ModuleType) and module is sys.modules[f"webmini.{name}"]
        assert getattr(webmini, name) is obj
    assert isinstance(webmini.config, Storage)


def test_dropped_errors_are_registered_by_the_package() -> None:
    """The dropped-error hook is set by ``webmini/__init__.py`` calling ``dropped.install()``."""
    from webmini import dropped, errors

    assert errors.on_build is dropped.remember_built
    init = (ROOT / "webmini" / "__init__.py").read_text()
    assert "dropped.install()" in init and "_webpy_alias.install()" in init


def test_modules_that_start_servers_themselves_carry_their_markers() -> None:
    """A test module building a runner itself is in markers.MODULE_MARKERS (``-m`` stays honest)."""
    from support.markers import MODULE_MARKERS

    tests = Path(__file__).resolve().parent
    runners = {"UwsgiServer(": "uwsgi", "NginxServer(": "nginx", "GunicornServer(": "gunicorn"}
    missing = []
    for path in sorted(tests.glob("test_*.py")):
        if path.name == "test_layout.py":
            continue  # names them only here
        text = path.read_text()
        for call, marker in runners.items():
            if call in text and marker not in MODULE_MARKERS.get(path.name, ()):
                missing.append(f"{path.name}: {marker}")
    assert missing == []
