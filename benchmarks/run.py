"""One entry to every benchmark: ``benchmarks/run.py NAME [its options]``.

``benchmarks/run.py`` alone lists them with the first line of each one's
docstring; ``benchmarks/run.py NAME --help`` shows a benchmark's options.
NAME is a script's path under benchmarks/ without ``.py`` (``inproc``,
``tfb/run`` also as ``tfb``). Each benchmark runs as if started directly,
in this process (``runpy``), with the repository root on ``sys.path``.
"""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: scripts that are not benchmarks: this entry, shared set-up
NOT_BENCHMARKS = {"run", "tfb/db_setup", "tfb/verify", "tfb/webmini_app"}
ALIASES = {"tfb": "tfb/run"}


def benchmarks() -> dict[str, Path]:
    """NAME -> script, for every runnable benchmark."""
    found = {}
    for path in sorted([*HERE.glob("*.py"), *HERE.glob("tfb/*.py")]):
        name = path.relative_to(HERE).with_suffix("").as_posix()
        if name not in NOT_BENCHMARKS:
            found[name] = path
    return found


def summary(path: Path) -> str:
    """The first line of a script's docstring."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.splitlines()[0] if doc else ""


def main(argv: list[str]) -> int:
    """List the benchmarks, or run the one named with the rest of the arguments."""
    table = benchmarks()
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.splitlines()[0] + "\n")
        for name, path in table.items():
            print(f"  {name:18} {summary(path)}")
        return 0
    name = ALIASES.get(argv[0], argv[0])
    if name not in table:
        print(f"run.py: no benchmark {argv[0]!r} (run.py lists them)", file=sys.stderr)
        return 2
    sys.argv = [str(table[name]), *argv[1:]]
    sys.path[:0] = [str(table[name].parent), str(HERE.parent)]
    runpy.run_path(str(table[name]), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
