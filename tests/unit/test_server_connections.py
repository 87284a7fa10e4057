"""The server's connection table (ragdesk.server.connections): per-address caps, idle
connections making room, trusted proxies exempt. The real server is tested in
tests/integration/test_server_hardening.py; here the bookkeeping's corners."""

from __future__ import annotations

from ragdesk.server.connections import ConnectionTable, forwarding_hosts, plain_address


class Conn:
    """Stands in for a connection: an address, idle or busy, and what dropping it does."""

    def __init__(self, table: ConnectionTable, address: str, idle: bool = True) -> None:
        self.table, self.address, self.idle, self.dropped = table, address, idle, False

    def drop(self) -> None:
        self.dropped = True
        self.table.remove(self)  # type: ignore[arg-type]


def test_a_full_server_closes_the_longest_idle_even_an_addresses_last() -> None:
    table = ConnectionTable(max_total=2, max_per_client=5)
    a = Conn(table, "10.0.0.1")
    b = Conn(table, "10.0.0.2")
    assert table.admit(a) and table.admit(b)  # type: ignore[arg-type]
    c = Conn(table, "10.0.0.1")
    assert table.admit(c) and a.dropped and len(table) == 2  # type: ignore[arg-type]
    table.touch(c)  # type: ignore[arg-type]  # (10.0.0.1's entry was emptied and made again)
    d = Conn(table, "10.0.0.3")
    assert table.admit(d) and b.dropped  # type: ignore[arg-type]
    table.remove(c)  # type: ignore[arg-type]
    table.remove(d)  # type: ignore[arg-type]
    assert len(table) == 0


def test_busy_connections_are_never_closed_to_make_room() -> None:
    table = ConnectionTable(max_total=10, max_per_client=2)
    busy = [Conn(table, "10.0.0.1", idle=False) for _ in range(2)]
    assert all(table.admit(c) for c in busy)  # type: ignore[arg-type]
    assert not table.admit(Conn(table, "10.0.0.1"))  # type: ignore[arg-type]
    assert not any(c.dropped for c in busy)
    assert table.admit(Conn(table, "10.0.0.2"))  # type: ignore[arg-type]  # others unaffected


def test_a_trusted_proxy_has_no_per_address_cap() -> None:
    table = ConnectionTable(max_total=100, max_per_client=2, trusted="127.0.0.1, 10.1.0.0/16")
    assert all(table.admit(Conn(table, "127.0.0.1", idle=False)) for _ in range(5))  # type: ignore[arg-type]
    assert all(table.admit(Conn(table, "10.1.2.3", idle=False)) for _ in range(5))  # type: ignore[arg-type]
    assert table.exempt("10.1.200.1") and not table.exempt("10.2.0.1")
    assert plain_address("::ffff:10.0.0.5") == "10.0.0.5" and plain_address("::1") == "::1"
    assert forwarding_hosts("127.0.0.1") == ["127.0.0.1/32", "::ffff:127.0.0.1/128"]
