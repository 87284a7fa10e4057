"""Zero egress, enforced for the whole suite: a test whose code reaches for anything but loopback
or a Unix socket fails.

An audit hook on `socket.connect` and `socket.getaddrinfo` refuses the call (so nothing leaves)
and records it (so the test fails even if the code under test swallowed the error). Child Python
processes that tests start get the same guard: `egress_site/` goes on their PYTHONPATH and its
sitecustomize installs the hook there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SITE = Path(__file__).with_name("egress_site")
sys.path.insert(0, str(SITE))

import egress_guard  # noqa: E402

_installed = False


def pytest_configure(config: pytest.Config) -> None:
    global _installed
    if not _installed:
        sys.addaudithook(egress_guard.check)
        _installed = True
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SITE), os.environ.get("PYTHONPATH", "")) if p
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):  # type: ignore[no-untyped-def]
    egress_guard.violations.clear()
    outcome = yield
    found = list(dict.fromkeys(egress_guard.violations))
    egress_guard.violations.clear()
    if found and outcome.excinfo is None:
        pytest.fail("zero-egress guard: " + "; ".join(found), pytrace=False)
