"""Installed into child Python processes that tests start: the same zero-egress guard.

A non-loopback connection attempt is refused and reported on stderr with a marker the tests
look for ("ZERO-EGRESS VIOLATION").
"""

import sys

from egress_guard import EgressBlocked, check


def _guard(event, args):  # type: ignore[no-untyped-def]
    try:
        check(event, args)
    except EgressBlocked as exc:
        print(f"ZERO-EGRESS VIOLATION: {exc}", file=sys.stderr)
        raise


sys.addaudithook(_guard)
