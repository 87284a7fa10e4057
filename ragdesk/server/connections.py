"""Connections the server keeps open: a deadline for each request head, a cap per client
address, and room for real requests however many idle connections arrive.

uvicorn bounds nothing before a request's head is complete: a connection that sends no byte, or
one byte every few seconds, stays open for ever, and its `limit_concurrency` counts such idle
connections with the busy ones, so 2,048 silent connections made every real request answer 503.
`guarded_protocol(...)` returns uvicorn's httptools protocol with four additions:

* a head deadline: from the moment a connection is made (after the TLS handshake, which has
  the same deadline, see runner.py), or from the first byte of a further request on a kept-alive
  connection, to the end of the request head. Past it the connection is dropped;
* a body pace: a request body may go `body_stall` seconds without a byte, and after its first
  `body_stall` seconds must have come at `body_min_rate` bytes/s on average, or the connection
  is dropped (a request in progress is never "idle", so a body trickled a byte at a time would
  otherwise hold its connection, and its place under the caps, for ever). Time the server
  itself holds the body up (reading paused while the app catches up, or a client waiting for
  100 Continue) does not count;
* a cap per client address: a new connection past it closes that address's longest-idle one,
  or is dropped itself when all of them are busy. A trusted proxy's address has no cap (every
  client behind nginx arrives from it);
* a total cap that makes room: a new connection past it closes the longest-idle connection of
  the whole server (one without a request in progress), so silent connections can never keep
  a real request out; only when every connection is busy is the new one dropped.

Everything here runs on the event loop's thread: no locks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("ragdesk.server.connections")


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """'127.0.0.1, 10.0.0.0/8' -> networks; a bad entry raises ValueError naming it."""
    out = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return out


def forwarding_hosts(text: str) -> list[str]:
    """The trusted proxies as uvicorn's proxy-headers middleware matches them: each network
    normalised, and an IPv4 one also as the IPv6-mapped addresses a dual-stack socket reports."""
    out = []
    for net in parse_networks(text):
        out.append(str(net))
        if net.version == 4:
            out.append(f"::ffff:{net.network_address}/{96 + net.prefixlen}")
    return out


def plain_address(host: str) -> str:
    """An IPv4 client of a dual-stack socket as its IPv4 address ('::ffff:10.0.0.5' -> '10.0.0.5')."""
    if host.startswith("::ffff:"):
        try:
            mapped = ipaddress.IPv6Address(host).ipv4_mapped
        except ValueError:
            return host
        if mapped is not None:
            return str(mapped)
    return host


class ConnectionTable:
    """The open connections, per client address, longest idle first."""

    def __init__(self, max_total: int, max_per_client: int, trusted: str = "") -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self._trusted = parse_networks(trusted)
        self._all: OrderedDict[GuardedProtocol, None] = OrderedDict()
        self._by_client: dict[str, OrderedDict[GuardedProtocol, None]] = {}
        self.dropped = 0  # connections closed to make room or past a deadline (for tests, metrics)

    def __len__(self) -> int:
        return len(self._all)

    def exempt(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)

    def admit(self, conn: GuardedProtocol) -> bool:
        """Register a new connection, closing idle ones to make room; False: refuse it."""
        address = conn.address
        mine = self._by_client.get(address)
        if mine is not None and len(mine) >= self.max_per_client and not self.exempt(address) \
                and not self._drop_idle(mine, "this address has too many connections"):
            return False
        if len(self._all) >= self.max_total and not self._drop_idle(self._all, "the server is full"):
            return False
        # (Looked up again: a drop above may have removed this address's last connection.)
        self._by_client.setdefault(address, OrderedDict())[conn] = None
        self._all[conn] = None
        return True

    def _drop_idle(self, among: OrderedDict[GuardedProtocol, None], why: str) -> bool:
        for conn in among:
            if conn.idle:
                log.debug("closing an idle connection from %s: %s", conn.address, why)
                self.dropped += 1
                conn.drop()  # (removes itself from the table)
                return True
        return False

    def touch(self, conn: GuardedProtocol) -> None:
        """`conn` just finished a request: it is now the most recently active."""
        if conn in self._all:
            self._all.move_to_end(conn)
            mine = self._by_client.get(conn.address)
            if mine is not None and conn in mine:
                mine.move_to_end(conn)

    def remove(self, conn: GuardedProtocol) -> None:
        self._all.pop(conn, None)
        mine = self._by_client.get(conn.address)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self._by_client[conn.address]


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head deadline, a body pace and the connection caps
    (module docstring). Made per server by `guarded_protocol`, which sets the class attributes."""

    table: ConnectionTable
    head_timeout: float
    body_stall: float
    body_min_rate: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address = "unknown"
        self._head_timer: asyncio.TimerHandle | None = None
        self._registered = False
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_start = self._body_last = 0.0  # loop times: the head's end, the last body byte
        self._body_bytes = 0

    @property
    def idle(self) -> bool:
        """No request is being answered (a silent or slow-header connection is idle too)."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def drop(self) -> None:
        """Close at once: no TLS close_notify to wait for (a silent peer would hold its socket)."""
        self._cancel_head_timer()
        self._cancel_body_timer()
        self.table.remove(self)
        self._registered = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.idle:
            self.table.dropped += 1
            log.debug("no complete request head from %s within %.0f s: closed", self.address,
                      self.head_timeout)
            self.drop()

    def _body_deadline(self) -> float:
        return min(self._body_last + self.body_stall,
                   self._body_start + self.body_stall + self._body_bytes / self.body_min_rate)

    def _arm_body_timer(self) -> None:
        self._cancel_body_timer()
        self._body_timer = self.loop.call_at(self._body_deadline(), self._body_check)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_check(self) -> None:
        """At the body's deadline: drop the connection if the body is still owed and late; the
        deadline moves on with what arrived since it was set (one timer per check, not per read)."""
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.more_body:
            return
        now = self.loop.time()
        if self.flow.read_paused or cycle.waiting_for_100_continue:  # held up by the server: not late
            self._body_last, self._body_start = now, now - self._body_bytes / self.body_min_rate
        elif now >= self._body_deadline():
            self.table.dropped += 1
            log.info("a request body from %s came too slowly (%d bytes in %.0f s): closed",
                     self.address, self._body_bytes, now - self._body_start)
            self.drop()
            return
        self._arm_body_timer()

    # --- asyncio and httptools callbacks ----------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.address = plain_address(self.client[0]) if self.client else "unknown"
        self._arm_head_timer()
        if self.table.admit(self):
            self._registered = True
        else:
            log.info("refused a connection from %s: every connection is busy", self.address)
            self.table.dropped += 1
            self.drop()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        if self._registered:
            self.table.remove(self)
            self._registered = False
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.idle:  # the first byte of a further request
            self._arm_head_timer()
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()
        if any((name == b"content-length" and value.strip() not in (b"", b"0"))
               or (name == b"transfer-encoding" and b"chunked" in value.lower())
               for name, value in self.headers):
            self._body_start = self._body_last = self.loop.time()
            self._body_bytes = 0
            self._arm_body_timer()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        self._body_last = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.table.touch(self)


def guarded_protocol(table: ConnectionTable, head_timeout: float, body_stall: float = 20.0,
                     body_min_rate: float = 4096.0) -> type[GuardedProtocol]:
    """The protocol class for one server (uvicorn makes one instance per connection)."""
    return type("RagdeskHttpProtocol", (GuardedProtocol,),
                {"table": table, "head_timeout": head_timeout, "body_stall": body_stall,
                 "body_min_rate": body_min_rate})
