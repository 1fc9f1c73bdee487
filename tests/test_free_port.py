"""The test and benchmark harnesses' free loopback ports (localservices/process.py)."""

from __future__ import annotations

import socket

from support import free_port


def test_free_ports_are_never_handed_out_twice_and_can_be_bound() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    for port in ports[:20]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))  # nothing holds it
