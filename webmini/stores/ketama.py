"""A ketama continuum compatible with libmemcached's weighted ketama.

Each server gets ``floor(weight / total * 40 * servers) * 4`` points (160
when weights are equal), computed in single precision as libmemcached does.
Point ``i`` of a server is hashed from ``"host-i"`` (port 11211) or
``"host:port-i"``; each MD5 digest gives four little-endian 32-bit points.
A key hashes to the first four digest bytes of its MD5 and belongs to the
first point at or after its hash, wrapping to the first point of the ring.

uhashring's ketama mode builds the same points for equal weights but picks
the first point strictly after the hash, stringifies bytes keys and computes
weights in integers, so it can disagree with libmemcached on edge cases;
this module follows libmemcached exactly and is checked against its tests.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from hashlib import md5

POINTS_PER_SERVER = 160
POINTS_PER_HASH = 4
DEFAULT_PORT = 11211

_F32 = struct.Struct("<f")
_POINTS = struct.Struct("<4I")


def _f32(value: float) -> float:
    """Round ``value`` to the nearest single-precision float, as C's ``float`` would."""
    result: float = _F32.unpack(_F32.pack(value))[0]
    return result


def key_hash(key: bytes | str) -> int:
    """Return the ketama hash of a key: the first 32 bits of its MD5, little-endian."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    return int.from_bytes(md5(key, usedforsecurity=False).digest()[:4], "little")


def split_node(node: str) -> tuple[str, int]:
    """Split ``"host:port"`` (or ``"[v6]:port"``, or ``"host"``) into host and port."""
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
    host, sep, port = node.rpartition(":")
    if not sep:
        return node, DEFAULT_PORT
    return host, int(port)


def points_for(weight: int, total_weight: int, servers: int) -> int:
    """Return how many continuum points a server of ``weight`` gets (a multiple of 4)."""
    # libmemcached: floor((float)(pct * 160 / 4 * (float)servers + 1e-10F)) * 4,
    # every step in single precision; emulated step by step so that weights
    # that do not divide evenly round exactly as the C library does.
    pct = _f32(_f32(weight) / _f32(total_weight))
    scaled = _f32(_f32(_f32(pct * POINTS_PER_SERVER) / 4) * _f32(servers))
    return int(_f32(scaled + _f32(1e-10))) * 4


def server_label(node: str) -> str:
    """Return the string libmemcached hashes for ``node``: ``host`` or ``host:port``."""
    host, port = split_node(node)
    return host if port == DEFAULT_PORT else f"{host}:{port}"


class Ketama:
    """An immutable weighted ketama ring over named nodes (``"host:port"``)."""

    __slots__ = ("nodes", "weights", "_points", "_owners")

    def __init__(self, nodes: Mapping[str, int] | Iterable[str]) -> None:
        weights = dict(nodes) if isinstance(nodes, Mapping) else dict.fromkeys(nodes, 1)
        if not weights:
            raise ValueError("a ketama ring needs at least one node")
        for name, weight in weights.items():
            if weight < 1:
                raise ValueError(f"weight of {name!r} must be >= 1, got {weight}")
        self.nodes: tuple[str, ...] = tuple(weights)
        self.weights: dict[str, int] = weights
        total = sum(weights.values())
        entries: list[tuple[int, int]] = []
        for index, name in enumerate(self.nodes):
            label = server_label(name)
            count = points_for(weights[name], total, len(self.nodes)) // POINTS_PER_HASH
            for i in range(count):
                digest = md5(f"{label}-{i}".encode(), usedforsecurity=False).digest()
                entries.extend((point, index) for point in _POINTS.unpack(digest))
        # Equal points are ordered by server index, like libmemcached's qsort.
        entries.sort()
        self._points = [point for point, _ in entries]
        self._owners = [index for _, index in entries]

    def __len__(self) -> int:
        """Return the number of points on the continuum."""
        return len(self._points)

    def points(self) -> list[tuple[int, str]]:
        """Return the continuum as sorted ``(point, node)`` pairs."""
        return [(p, self.nodes[i]) for p, i in zip(self._points, self._owners, strict=True)]

    def position(self, hash_value: int) -> int:
        """Return the index of the first point at or after ``hash_value`` (wrapping)."""
        pos = bisect_left(self._points, hash_value)
        return 0 if pos == len(self._points) else pos

    def point_for(self, key: bytes | str) -> int:
        """Return the continuum point that ``key`` maps to."""
        return self._points[self.position(key_hash(key))]

    def node_for(self, key: bytes | str) -> str:
        """Return the node that owns ``key``."""
        # libmemcached answers the only server without hashing; the ring
        # gives the same answer.
        return self.nodes[self._owners[self.position(key_hash(key))]]

    def walk(self, key: bytes | str) -> Iterator[str]:
        """Yield the distinct nodes met clockwise from ``key``'s point: owner, then fallbacks."""
        owners = self._owners
        count = len(owners)
        start = self.position(key_hash(key))
        seen: set[int] = set()
        for step in range(count):
            index = owners[(start + step) % count]
            if index not in seen:
                seen.add(index)
                yield self.nodes[index]
                if len(seen) == len(self.nodes):
                    return
