"""The zero-egress check itself, with no dependencies: used by the pytest plugin and by the
sitecustomize that guards child Python processes."""

from __future__ import annotations

import ipaddress
import socket

violations: list[str] = []


class EgressBlocked(OSError):
    pass


def is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]")
    if host in ("", "localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def check(event: str, args: tuple[object, ...]) -> None:
    """An audit hook: refuse (and record) any connection or name lookup beyond loopback."""
    if event == "socket.connect":
        sock, address = args
        if getattr(sock, "family", None) == getattr(socket, "AF_UNIX", None):
            return
        if isinstance(address, (str, bytes)):
            return
        host = address[0] if isinstance(address, tuple) else address
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    if not is_local(host):
        message = f"network egress attempted: {event} to {host!r}"
        violations.append(message)
        raise EgressBlocked(message)
