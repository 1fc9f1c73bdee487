"""Shared directories: the metrics spool resists planted symlinks and forged snapshots."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from support.root import as_root

from webmini.ops.metrics import Metrics
from webmini.rundir import PrivateDir, default_runtime_dir


def test_spool_dir_that_is_a_symlink_is_never_written_through(tmp_path: Path) -> None:
    """A symlink planted where the spool should be: nothing lands in its target."""
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    (tmp_path / "spool").symlink_to(victim)
    m = Metrics(spool_dir=str(tmp_path / "spool"))
    m.flush()
    m.render()
    assert list(victim.iterdir()) == []


def test_planted_symlink_in_the_spool_does_not_overwrite_its_target(tmp_path: Path) -> None:
    """worker-<pid>.json (and any temp name) planted as a symlink to a mode-600 file."""
    target = tmp_path / "root-owned-secret"
    target.write_text("precious")
    target.chmod(0o600)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    (spool / f"worker-{os.getpid()}.json").symlink_to(target)
    (spool / f"worker-{os.getpid()}.json.tmp").symlink_to(target)
    m = Metrics(spool_dir=str(spool))
    m.flush()
    assert target.read_text() == "precious"
    snap = spool / f"worker-{os.getpid()}.json"
    assert not snap.is_symlink() and json.loads(snap.read_text())["pid"] == os.getpid()


def test_spool_shared_with_others_is_refused(tmp_path: Path) -> None:
    """A spool directory others may write to is not used (and made 0700 when created)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    Metrics(spool_dir=str(shared)).flush()
    assert list(shared.iterdir()) == []
    fresh = tmp_path / "fresh" / "spool"
    Metrics(spool_dir=str(fresh)).flush()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700


def test_forged_snapshot_of_another_user_is_ignored(tmp_path: Path) -> None:
    """Lines in a spool file not written by us never reach /metrics."""
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    forged = spool / "worker-1.json"  # pid 1 is alive
    forged.write_text(json.dumps({"pid": 1, "samples": [
        ["requests_total", 'webmini_requests_total{code="200",forged="1"} 999999']]}))
    subprocess.run(as_root(["chown", "65534:65534", str(forged)]), check=True)
    assert forged.stat().st_uid == 65534
    text = Metrics(spool_dir=str(spool)).render()
    assert "forged" not in text


def test_private_dir_refuses_other_owner_and_default_is_not_tmp(tmp_path: Path) -> None:
    """PrivateDir checks owner and mode; the default location is a runtime dir, not /tmp."""
    d = PrivateDir(str(tmp_path / "p"))
    d.write_atomic("a", b"1")
    assert d.read("a") == b"1"
    os.mkfifo(tmp_path / "p" / "fifo")
    assert d.read("fifo") is None  # never blocks on a FIFO
    d.close()
    assert not default_runtime_dir("webmini-ws").startswith("/tmp")
