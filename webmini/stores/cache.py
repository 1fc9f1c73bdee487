"""memcached over python-memcached: a ketama ring of bounded, per-node connection pools.

``Cache(["10.0.0.1:11211", "10.0.0.2:11211"])`` places keys like
libmemcached's weighted ketama (see :mod:`webmini.stores.ketama`). Each node keeps
at most ``pool_size`` connections (python-memcached's ``_Host``), shared by
all greenlets; ``memcache.Client`` itself is not used because it is a
``threading.local``: under gevent it would open sockets per greenlet.

A node that fails is marked down for ``retry_delay`` seconds and its keys
fall to the next node on the ring, for the call that found it failing too
(``Cache._on_ring``); after the delay one call tries it again. With no node
to serve a key, reads are misses and writes return False: a cache failure
never raises into the handler.

Nothing written during an outage is lost when the node returns: a key
written while its owner was down went to the next node on the ring, and
for ``failback_window`` seconds after the owner is back (default a day, a
session's lifetime) a miss on the owner is looked up on that next node too.
A worker knows a node came back when it saw it down, or from the node's
own ``uptime`` (checked on the first connection, and again after a pooled
connection was found closed): a restarted node is recent for every worker,
including one started after the outage.

No stale read after a failback: a key may live on its owner or on any node
it fell to during an outage, so ``delete`` invalidates it on every node. A
delete that could not reach a node is remembered (up to
``MAX_MISSED_DELETES`` keys per node) and replayed the moment that node
answers again, before anything else is read from it; past that bound the
node is flushed instead.

Values: ``bytes``, ``str`` and ``int`` are stored as python-memcached stores
them (flags 0, 16, 2); anything else is stored as JSON. Pickled values are
never written, and never read (flag 1 is a miss).
"""

from __future__ import annotations

import enum
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from webmini._extras import require

with require("memcache", "webmini.stores.cache"):
    import memcache

from webmini.stores.ketama import Ketama

__all__ = ["Cache", "encode_value", "decode_value"]

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Values read, by raw key (a fresh one per exchange: callers add to it).
_Values = dict[bytes, Any]

FLAG_BYTES = 0
FLAG_PICKLE = 1 << 0  # python-memcached's pickle flag: refused
FLAG_INT = 1 << 1
FLAG_LONG = 1 << 2
FLAG_TEXT = 1 << 4
FLAG_JSON = 1 << 8

#: memcached's longest key, in bytes (the key prefix included).
MAX_KEY_LENGTH = 250
#: Deletes remembered per unreachable node, replayed when it is back (flush beyond).
MAX_MISSED_DELETES = 10_000
# memcached reads an expiry above 30 days as a Unix timestamp.
_RELATIVE_EXPIRY_LIMIT = 30 * 24 * 3600
# SECURITY: memcached keys are protocol tokens; a space, CR or LF in a key
# would let a caller inject commands, so only printable non-space bytes pass.
_VALID_KEY = re.compile(rb"[\x21-\x7e\x80-\xff]{1,%d}" % MAX_KEY_LENGTH)


class _NodeBusy(Exception):
    """No connection to a node became free within ``acquire_timeout`` (a miss, not a 503)."""


class _NodeFailure(Exception):
    """The node did not answer (refused, reset, timed out): mark it down."""


class _BadReply(Exception):
    """The node answered something unexpected: drop the connection, keep the node."""


class _Failed(enum.Enum):
    """What ``Cache._attempt`` returns when the node failed (and is now marked down)."""

    NODE = "node failed"


def encode_value(value: Any) -> tuple[int, bytes]:
    """Return ``(flags, payload)`` for a value: bytes, str and int natively, the rest as JSON."""
    kind = type(value)
    if kind is bytes:
        return FLAG_BYTES, value
    if kind is str:
        return FLAG_TEXT, value.encode("utf-8")
    if kind is int:
        return FLAG_INT, b"%d" % value
    # SECURITY: JSON, never pickle: a value read back cannot run code.
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return FLAG_JSON, text.encode("utf-8")


def decode_value(flags: int, payload: bytes) -> Any:
    """Return the value stored with ``flags``; unknown or pickled flags raise ValueError."""
    if flags == FLAG_BYTES:
        return payload
    if flags == FLAG_TEXT:
        return payload.decode("utf-8")
    if flags in (FLAG_INT, FLAG_LONG):
        return int(payload)
    if flags == FLAG_JSON:
        return json.loads(payload)
    # SECURITY: flag 1 is a pickle written by another client; loading it would
    # execute whatever the cache holds, so it is treated as a miss.
    raise ValueError(f"refusing to decode a value with flags {flags:#x}")


#: Longest reply line accepted (a VALUE or STAT line is well under 300 bytes).
MAX_LINE = 8192


class _Host(memcache._Host):
    """python-memcached's connection with a bounded ``readline``."""

    def readline(self, raise_exception: bool = False) -> bytes:
        """One reply line; a server that sends more than MAX_LINE bytes without CRLF is cut off."""
        # SECURITY: python-memcached's readline keeps reading until CRLF, so a
        # hostile or broken server could fill the worker's memory; written
        # here only to add that bound.
        buf: bytes = self.__dict__.get("buffer", b"")
        while True:
            index = buf.find(b"\r\n")
            if index >= 0:
                self.buffer = buf[index + 2:]
                return bytes(buf[:index])
            if len(buf) > MAX_LINE:
                self.buffer = b""
                raise _BadReply(f"reply line longer than {MAX_LINE} bytes")
            data = self.socket.recv(4096) if self.socket else b""
            if not data:
                self.mark_dead("connection closed in readline()")
                if raise_exception:
                    raise memcache._ConnectionDeadError()
                return b""
            buf += data


class _NodePool:
    """At most ``size`` connections to one node, handed to one caller at a time."""

    def __init__(self, address: str, size: int, socket_timeout: float) -> None:
        self.address = address
        self.size = size
        self.socket_timeout = socket_timeout
        self.idle: list[Any] = []
        self.opened = 0  # connections that exist, idle or in use
        self.in_use = 0
        self._cond = threading.Condition()

    def acquire(self, timeout: float) -> Any:
        """Return an idle connection, a new one if below ``size``, or wait up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.idle:
                    self.in_use += 1
                    return self.idle.pop()
                if self.opened < self.size:
                    # The slot is counted before the (yielding) connect happens.
                    self.opened += 1
                    self.in_use += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _NodeBusy(f"no free connection to {self.address} in {timeout}s")
                self._cond.wait(remaining)
        # dead_retry=0: down/up bookkeeping is per node (Cache), not per connection.
        return _Host(self.address, dead_retry=0, socket_timeout=self.socket_timeout)

    def release(self, conn: Any, broken: bool = False) -> None:
        """Give a connection back; a broken one is closed and its slot freed."""
        if broken:
            conn.close_socket()
        with self._cond:
            self.in_use -= 1
            if broken:
                self.opened -= 1
            else:
                self.idle.append(conn)
            self._cond.notify()

    def clear(self) -> None:
        """Close the idle connections (the node went away)."""
        with self._cond:
            idle, self.idle = self.idle, []
            self.opened -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close_socket()


class _Node:
    """One memcached server: its pool and whether it is up."""

    def __init__(self, name: str, pool: _NodePool, retry_delay: float) -> None:
        self.name = name
        self.pool = pool
        self.retry_delay = retry_delay
        self.down_until = 0.0
        self.failures = 0
        # Keys whose delete did not reach this node; replayed when it answers.
        self.missed: set[bytes] = set()
        self.missed_overflow = False
        # When this node was last back from an outage (monotonic; 0: never
        # seen back), and whether its uptime must be read on the next exchange.
        self.back_at = 0.0
        self.check_uptime = True

    def miss_delete(self, raw: bytes) -> None:
        """Remember that ``raw`` could not be deleted here (flush later if too many)."""
        if len(self.missed) < MAX_MISSED_DELETES:
            self.missed.add(raw)
        else:
            self.missed_overflow = True

    def is_up(self, now: float) -> bool:
        """Return True unless the node is inside its retry delay (no side effect)."""
        return not self.down_until or now >= self.down_until

    def available(self, now: float) -> bool:
        """Return True if the node may be used now; after the delay, one caller probes it."""
        if not self.down_until:
            return True
        if now < self.down_until:
            return False
        # Retry delay over: this caller probes the node, the others keep
        # failing over until the probe succeeds or fails again.
        self.down_until = now + self.retry_delay
        return True

    def mark_down(self, reason: object) -> None:
        """Take the node out of the ring for ``retry_delay`` seconds."""
        if not self.down_until:
            log.warning("memcached %s is down (%s); retry in %ss", self.name, reason,
                        self.retry_delay)
        self.failures += 1
        self.down_until = time.monotonic() + self.retry_delay
        self.pool.clear()

    def mark_up(self) -> None:
        """Put the node back after a successful exchange."""
        if self.down_until:
            log.warning("memcached %s is back", self.name)
            self.down_until = 0.0
            self.back_at = time.monotonic()


class Cache:
    """A memcached cluster client: ketama placement, bounded pools, failover, JSON values."""

    def __init__(
        self,
        servers: Iterable[str] | Mapping[str, int],
        *,
        pool_size: int = 10,
        socket_timeout: float = 1.0,
        acquire_timeout: float | None = None,
        retry_delay: float = 5.0,
        key_prefix: str = "",
        failback_window: float = 86400.0,
    ) -> None:
        self.ring = Ketama(servers)
        self.failback_window = failback_window
        self.pool_size = pool_size
        self.socket_timeout = socket_timeout
        self.acquire_timeout = socket_timeout if acquire_timeout is None else acquire_timeout
        self.retry_delay = retry_delay
        self.key_prefix = key_prefix.encode("utf-8")
        self.nodes: dict[str, _Node] = {
            name: _Node(name, _NodePool(name, pool_size, socket_timeout), retry_delay)
            for name in self.ring.nodes
        }

    # -- keys and nodes ---------------------------------------------------

    def _key(self, key: str | bytes) -> bytes:
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        raw = self.key_prefix + raw
        if not _VALID_KEY.fullmatch(raw):
            raise ValueError(
                f"invalid memcached key {key!r} (1-{MAX_KEY_LENGTH} bytes, no spaces or controls)"
            )
        return raw

    def node_for(self, key: str | bytes) -> str | None:
        """Return the node that serves ``key`` now (its owner, or the next one up), or None."""
        now = time.monotonic()
        for name in self.ring.walk(self._key(key)):
            if self.nodes[name].is_up(now):
                return name
        return None

    def _pick(self, raw: bytes, now: float) -> _Node | None:
        for name in self.ring.walk(raw):
            node = self.nodes[name]
            if node.available(now):
                return node
        return None

    def _fallback(self, raw: bytes, node: _Node, now: float) -> _Node | None:
        """The node ``raw`` fell to while ``node`` (just back) was down, or None.

        None unless ``node`` came back within ``failback_window``: only then
        may a key written during its outage sit on the next node of the ring.
        """
        if not node.back_at or now - node.back_at >= self.failback_window:
            return None
        walk = self.ring.walk(raw)
        for name in walk:
            if name == node.name:
                break
        for name in walk:
            other = self.nodes[name]
            if other.is_up(now):
                return other
        return None

    def _group(self, raws: Iterable[bytes]) -> dict[_Node, list[bytes]]:
        now = time.monotonic()
        groups: dict[_Node, list[bytes]] = {}
        for raw in raws:
            node = self._pick(raw, now)
            if node is not None:
                groups.setdefault(node, []).append(raw)
        return groups

    def _run(self, node: _Node, exchange: Callable[..., T], *args: Any) -> T:
        """Run ``exchange(conn, *args)`` on a pooled connection; _NodeFailure if the node failed."""
        for attempt in (1, 2):
            try:
                conn = node.pool.acquire(self.acquire_timeout)
            except _NodeBusy as e:
                # Busy, not dead: the caller sees a miss, the node stays up.
                raise _BadReply(str(e)) from None
            reused = conn.socket is not None
            try:
                if not conn.connect():
                    raise _NodeFailure("connect failed")
                if node.missed or node.missed_overflow:
                    # Before anything is read from a node that missed deletes.
                    self._replay_deletes(node, conn)
                if node.check_uptime:
                    self._read_uptime(node, conn)
                result = exchange(conn, *args)
            except (memcache._ConnectionDeadError, ConnectionError) as e:
                node.pool.release(conn, broken=True)
                if reused and attempt == 1:
                    # A pooled socket the server closed (a restart?): one
                    # fresh try, which reads the node's uptime first.
                    node.check_uptime = True
                    continue
                node.mark_down(str(e) or type(e).__name__)
                raise _NodeFailure(str(e)) from None
            except (OSError, memcache._Error, _NodeFailure) as e:
                node.pool.release(conn, broken=True)
                node.mark_down(e)
                raise _NodeFailure(str(e)) from None
            except BaseException:
                # A bad reply, a gevent.Timeout, a greenlet kill: the stream may be
                # mid-reply, so the connection is not reused.
                node.pool.release(conn, broken=True)
                raise
            node.pool.release(conn)
            node.mark_up()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_uptime(self, node: _Node, conn: Any) -> None:
        """A node up for less than ``failback_window`` came back recently (a restart)."""
        uptime = _server_stats(conn).get("uptime", "")
        node.check_uptime = False
        if uptime.isdigit() and int(uptime) < self.failback_window:
            node.back_at = max(node.back_at, time.monotonic() - int(uptime))

    def _replay_deletes(self, node: _Node, conn: Any) -> None:
        """Send the deletes that missed ``node`` (or flush it), on a live connection."""
        missed, node.missed = node.missed, set()
        overflow, node.missed_overflow = node.missed_overflow, False
        try:
            if overflow:
                log.warning("memcached %s: too many missed deletes, flushing it", node.name)
                _simple(conn, b"flush_all")
                return
            log.warning("memcached %s: replaying %d missed delete(s)", node.name, len(missed))
            for raw in missed:
                _simple(conn, b"delete " + raw)
        except BaseException:
            node.missed |= missed  # not replayed: keep them for the next time
            node.missed_overflow |= overflow
            raise

    def _attempt(
        self, node: _Node, failed: T, exchange: Callable[..., T], *args: Any
    ) -> T | _Failed:
        """``exchange`` on ``node``; ``failed`` on a bad reply, ``_Failed.NODE`` if the
        node failed (it is marked down now)."""
        try:
            return self._run(node, exchange, *args)
        except _NodeFailure:
            return _Failed.NODE
        except _BadReply as e:
            log.warning("memcached %s: %s", node.name, e)
            return failed
        except Exception as e:
            # SECURITY: whatever a broken or hostile server answers (a bad
            # number, deeply nested JSON...) is a miss, never an exception in
            # the handler; the connection was discarded by _run.
            log.warning("memcached %s: bad reply (%s: %s)", node.name, type(e).__name__, e)
            return failed

    def _safely(
        self, node: _Node | None, failed: T, exchange: Callable[..., T], *args: Any
    ) -> T:
        """``exchange`` on ``node``; ``failed`` if there is none, or it failed or answered badly."""
        if node is None:
            return failed
        result = self._attempt(node, failed, exchange, *args)
        return failed if result is _Failed.NODE else result

    def _on_ring(
        self, raw: bytes, failed: T, exchange: Callable[..., T], *args: Any
    ) -> tuple[_Node | None, T]:
        """``exchange`` for key ``raw`` on the node serving it: (that node, the result).

        When the node fails on this very call (it died, or this call probed it
        after its retry delay), it is marked down and the key's next node on
        the ring serves the call, as it serves every later one until the node
        is back: a miss here would log out a visitor whose session was
        rewritten on that next node. At most one failover per call.
        """
        node = self._pick(raw, time.monotonic())
        if node is None:
            return None, failed
        result = self._attempt(node, failed, exchange, *args)
        if result is not _Failed.NODE:
            return node, result
        node = self._pick(raw, time.monotonic())
        return node, self._safely(node, failed, exchange, *args)

    # -- reads --------------------------------------------------------------

    def get(self, key: str | bytes, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` on a miss or when its node is down."""
        raw = self._key(key)
        node, found = self._on_ring(raw, _Values(), _get, [raw])
        if raw not in found and node is not None and node.back_at:
            # Written while its owner was away? Then on the next node.
            fallback = self._fallback(raw, node, time.monotonic())
            found = self._safely(fallback, _Values(), _get, [raw])
        return found.get(raw, default)

    def get_multi(self, keys: Iterable[str | bytes]) -> dict[Any, Any]:
        """Return ``{key: value}`` for the keys found (one round trip per node)."""
        originals: dict[bytes, Any] = {}
        for key in keys:
            originals[self._key(key)] = key
        result: dict[Any, Any] = {}
        now = time.monotonic()
        for node, raws in self._group(originals).items():
            attempt = self._attempt(node, _Values(), _get, raws)
            if attempt is _Failed.NODE:
                # The node failed on this call: its keys' next nodes serve them (_on_ring).
                found = _Values()
                for other, rest in self._group(raws).items():
                    found.update(self._safely(other, _Values(), _get, rest))
            else:
                found = attempt
            if node.back_at and len(found) < len(raws):
                for raw in raws:  # written while their owner was away?
                    if raw not in found:
                        extra: dict[bytes, Any] = self._safely(
                            self._fallback(raw, node, now), {}, _get, [raw])
                        found.update(extra)
            for raw, value in found.items():
                result[originals[raw]] = value
        return result

    # -- writes -------------------------------------------------------------

    def set(self, key: str | bytes, value: Any, expire: int = 0) -> bool:
        """Store ``value`` for ``expire`` seconds from now (0: no expiry); False if not stored."""
        return self._store(b"set", key, value, expire)

    def add(self, key: str | bytes, value: Any, expire: int = 0) -> bool:
        """Store ``value`` only if ``key`` is absent; False if it exists or was not stored."""
        return self._store(b"add", key, value, expire)

    def _store(self, cmd: bytes, key: str | bytes, value: Any, expire: int) -> bool:
        raw = self._key(key)
        flags, payload = encode_value(value)
        line = _storage_command(cmd, raw, flags, expire, payload)
        node, refused = self._on_ring(raw, None, _store, line, 1)
        if refused == [] and node is not None and node.back_at:
            self._drop_fallback_copy(raw, node, time.monotonic())
        return refused == []

    def _drop_fallback_copy(self, raw: bytes, node: _Node, now: float) -> None:
        """A key rewritten on its owner: its outage copy must not outlive it (eviction)."""
        other = self._fallback(raw, node, now)
        if other is not None and self._safely(other, None, _simple, b"delete " + raw) is None:
            other.miss_delete(raw)

    def set_multi(self, mapping: Mapping[Any, Any], expire: int = 0) -> list[Any]:
        """Store every item (pipelined per node); return the keys that were not stored."""
        originals: dict[bytes, Any] = {}
        commands: dict[bytes, bytes] = {}
        for key, value in mapping.items():
            raw = self._key(key)
            flags, payload = encode_value(value)
            originals[raw] = key
            commands[raw] = _storage_command(b"set", raw, flags, expire, payload)
        stored: set[bytes] = set()

        def store(node: _Node, raws: list[bytes]) -> bool:
            """Pipeline ``raws`` to ``node``; False if the node failed on this call."""
            blob = b"".join(commands[raw] for raw in raws)
            refused = self._attempt(node, None, _store, blob, len(raws))
            if refused is _Failed.NODE:
                return False
            if refused is not None:
                refused_set = set(refused)
                stored.update(raw for i, raw in enumerate(raws) if i not in refused_set)
            return True

        for node, raws in self._group(originals).items():
            if not store(node, raws):
                # The node failed on this call: its keys' next nodes take them (_on_ring).
                for other, rest in self._group(raws).items():
                    store(other, rest)
        return [key for raw, key in originals.items() if raw not in stored]

    def delete(self, key: str | bytes) -> bool:
        """Delete ``key`` on every node it may live on; True if it existed somewhere.

        A key may sit on its owner and on the nodes it fell to while the owner
        was down: deleting it only on today's owner would leave an old copy to
        be served after the next failover. A node this delete cannot reach
        gets it replayed as soon as it answers again. Workers track node
        health each on their own, so the delete does not trust this one's view.
        """
        raw = self._key(key)
        existed = False
        for node in self.nodes.values():
            # Even a node this worker believes down is tried: another worker
            # may already read from it again. A node that refuses costs a
            # refused connect; a frozen one up to socket_timeout (writes only).
            reply = self._safely(node, None, _simple, b"delete " + raw)
            if reply is None:
                node.miss_delete(raw)
            elif reply == b"DELETED":
                existed = True
        return existed

    def incr(self, key: str | bytes, delta: int = 1) -> int | None:
        """Add ``delta`` to a stored integer; return the new value, or None if absent."""
        return self._incrdecr(b"incr", key, delta)

    def decr(self, key: str | bytes, delta: int = 1) -> int | None:
        """Subtract ``delta`` (memcached stops at 0); return the new value or None."""
        return self._incrdecr(b"decr", key, delta)

    def _incrdecr(self, cmd: bytes, key: str | bytes, delta: int) -> int | None:
        if delta < 0:
            raise ValueError("delta must be >= 0 (use decr)")
        raw = self._key(key)
        _, reply = self._on_ring(raw, b"", _simple, b"%s %s %d" % (cmd, raw, delta))
        return int(reply) if reply.isdigit() else None

    # -- health -------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Return client-side health: nodes up/down, pool use per node."""
        now = time.monotonic()
        nodes: dict[str, Any] = {}
        for name, node in self.nodes.items():
            up = node.is_up(now)
            nodes[name] = {
                "up": up,
                "retry_in": 0.0 if up else round(node.down_until - now, 3),
                "failures": node.failures,
                "pool_size": node.pool.size,
                "open": node.pool.opened,
                "in_use": node.pool.in_use,
                "idle": len(node.pool.idle),
            }
        up_count = sum(1 for n in nodes.values() if n["up"])
        return {
            "nodes": nodes,
            "up": up_count,
            "down": len(nodes) - up_count,
            "in_use": sum(n["in_use"] for n in nodes.values()),
            "open": sum(n["open"] for n in nodes.values()),
        }

    def server_stats(self) -> dict[str, dict[str, str] | None]:
        """Return memcached's own ``stats`` per node (None for a node that is down)."""
        now = time.monotonic()
        result: dict[str, dict[str, str] | None] = {}
        for name, node in self.nodes.items():
            available = node.available(now)
            result[name] = self._safely(node, None, _server_stats) if available else None
        return result

    def flush_all(self) -> None:
        """Empty every node that is up (tests and maintenance only)."""
        now = time.monotonic()
        for node in self.nodes.values():
            if node.available(now):
                self._safely(node, b"", _simple, b"flush_all")

    def close(self) -> None:
        """Close the idle connections of every node."""
        for node in self.nodes.values():
            node.pool.clear()


# -- the text protocol over one _Host connection -----------------------------


def _expiry(expire: float) -> int:
    """Seconds from now, as memcached wants them (absolute time beyond 30 days)."""
    seconds = int(expire)
    return int(time.time()) + seconds if seconds > _RELATIVE_EXPIRY_LIMIT else seconds


def _storage_command(cmd: bytes, raw: bytes, flags: int, expire: float, payload: bytes) -> bytes:
    expire = _expiry(expire)
    return b"%s %s %d %d %d\r\n%s\r\n" % (cmd, raw, flags, expire, len(payload), payload)


#: Largest value length a reply may announce (memcached's item size limit is
#: 1 MiB by default, at most 1 GiB with -I); a longer one is a bad reply.
MAX_VALUE_SIZE = 128 << 20


def _get(conn: Any, raws: list[bytes]) -> dict[bytes, Any]:
    conn.send_cmd(b"get " + b" ".join(raws))
    wanted = set(raws)
    found: dict[bytes, Any] = {}
    while True:
        line = conn.readline(raise_exception=True)
        if line == b"END":
            return found
        parts = line.split()
        # SECURITY: every number is checked before use: a hostile length
        # (text, negative, 100 GB) must not be read, allocated or raised.
        if (len(parts) != 4 or parts[0] != b"VALUE" or not parts[2].isdigit()
                or not parts[3].isdigit() or len(parts[3]) > 12):
            raise _BadReply(f"unexpected reply to get: {line[:80]!r}")
        flags, length = int(parts[2]), int(parts[3])
        if length > MAX_VALUE_SIZE:
            raise _BadReply(f"value of {length} bytes announced")
        payload = conn.recv(length + 2)
        if len(payload) != length + 2 or payload[-2:] != b"\r\n":
            raise _BadReply("value not followed by CRLF")
        if parts[1] not in wanted:
            # SECURITY: a key we did not ask for is never handed back.
            log.warning("memcached sent an unrequested key %r", parts[1][:80])
            continue
        try:
            found[parts[1]] = decode_value(flags, payload[:-2])
        except (ValueError, RecursionError) as e:
            # bad JSON / UTF-8 / number, or JSON nested deeper than Python's
            # stack: a miss, logged
            log.warning("memcached value %r ignored: %s", parts[1][:80], type(e).__name__)


def _store(conn: Any, blob: bytes, count: int) -> list[int]:
    """Send ``count`` pipelined storage commands; return the indexes not stored."""
    conn.send_cmds(blob)
    refused: list[int] = []
    for i in range(count):
        line = conn.readline(raise_exception=True)
        if line == b"STORED":
            continue
        if line == b"NOT_STORED" or line.startswith(b"SERVER_ERROR"):
            # add on an existing key, or a value above the item size limit
            refused.append(i)
            continue
        raise _BadReply(f"unexpected reply to a store: {line[:80]!r}")
    return refused


def _simple(conn: Any, command: bytes) -> bytes:
    conn.send_cmd(command)
    line: bytes = conn.readline(raise_exception=True)
    if line.startswith((b"ERROR", b"CLIENT_ERROR")):
        # e.g. incr on a value that is not a number: the stream is still in step
        log.warning("memcached refused %r: %r", command[:40], line[:80])
        return b""
    return line


def _server_stats(conn: Any) -> dict[str, str]:
    conn.send_cmd(b"stats")
    stats: dict[str, str] = {}
    while True:
        line = conn.readline(raise_exception=True)
        if line == b"END":
            return stats
        fields = line.decode("ascii", "replace").split(" ", 2)
        if len(fields) != 3 or fields[0] != "STAT":
            raise _BadReply(f"unexpected reply to stats: {line[:80]!r}")
        stats[fields[1]] = fields[2]
