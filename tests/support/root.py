"""Run a command as root for the tests that check root-only behaviour, never skip them.

The test command installs Debian packages as root or through ``sudo``
(README), so the suite may count on one of the two: run as root, the
command runs as is; otherwise through passwordless ``sudo -n``. Neither
available is a failure that says so, not a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

import pytest

__all__ = ["as_root"]


def as_root(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """``cmd`` as a command line that runs as root (``env``, if given, passed along)."""
    if os.geteuid() == 0:
        return list(cmd)
    sudo = shutil.which("sudo")
    if sudo is None or subprocess.run([sudo, "-n", "true"], capture_output=True).returncode:
        pytest.fail("this test checks root-only behaviour: run the suite as root or with "
                    "passwordless sudo (as scripts/test.sh's package step needs)", pytrace=False)
    prefix = [sudo, "-n", "env", *(f"{k}={v}" for k, v in (env or {}).items())]
    return [*prefix, *cmd]
