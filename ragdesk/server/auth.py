"""Client tokens and the guard against guessing them.

A token is 256 random bits shown once (``rd_`` + URL-safe base64); the store keeps only its
SHA-256, and a presented token is compared with every active hash in constant time
(`store.base.matching_token`). A token may be limited to some collections and is read-only
unless created with admin scope.

`TokenRegistry` is the one place tokens are created, listed, revoked and checked, by the
command line, the GUI and the server alike; the server keeps the active hashes in memory and
reloads them when the registry changes them (at once) or every few seconds (changes made
elsewhere in the process).

`Throttle` counts failed sign-ins per client address in a sliding window; past the limit that
address gets 429 with Retry-After until the window has passed.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from ragdesk.core.records import ApiToken
from ragdesk.core.store.base import Sharing, matching_token
from ragdesk.errors import RagdeskError, UsageError

log = logging.getLogger("ragdesk.server.auth")

TOKEN_PREFIX = "rd_"
RELOAD_SECONDS = 2.0
_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@")


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class UnknownCollection(RagdeskError):
    """A token was asked for with a collection the store does not have."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: the token's name, its scope, and the collection ids it may read."""

    name: str
    admin: bool
    collections: tuple[str, ...] | None
    token_id: int = 0  # the store's id of the token: unique, never reused for a new token

    @property
    def owner(self) -> str:
        """Whose remote conversations these are: the token itself, not its name ("ana#12"). A
        token revoked and created again under the same name is a new token, and must not
        continue the old one's conversations (session.owner_name reads the name back)."""
        return f"{self.name}#{self.token_id}"

    def allows_collection(self, name: str) -> bool:
        return self.collections is None or name in self.collections

    def covers(self, collections: Sequence[str] | None) -> bool:
        """Whether a scope (None: every collection) lies within this one: a token can only hand
        out or take back what it may itself read."""
        if self.collections is None:
            return True
        return collections is not None and all(c in self.collections for c in collections)


class TokenRegistry:
    """Create, list, revoke and verify client tokens over a store."""

    def __init__(self, store: Sharing) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._active: list[ApiToken] = []
        self._loaded_at = 0.0

    # --- management ---------------------------------------------------------------------------

    def create(self, name: str, collections: Sequence[str] | None = None,
               admin: bool = False, by: str | None = None) -> tuple[ApiToken, str]:
        """A new token; returns its record and the secret, which is never shown again. `by`:
        the token that asked for it over the API (for the audit log)."""
        name = name.strip()
        if not name or len(name) > 64 or not set(name) <= _NAME_OK:
            raise UsageError("a token name is 1-64 letters, digits and - _ . @")
        if collections is not None:
            if not collections:  # an empty scope must not be stored as "every collection"
                raise UsageError("name at least one collection for this token (none named: leave "
                                 "the collections out for a token that reads every collection)")
            known = {c.name for c in self.store.collections()}
            unknown = [c for c in collections if c not in known]
            if unknown:
                raise UnknownCollection(f"no collection named {unknown[0]!r} "
                                   f"(collections: {', '.join(sorted(known)) or 'none yet'})")
        secret = new_secret()
        token = self.store.create_token(name, hash_token(secret),
                                        list(dict.fromkeys(collections)) if collections is not None else None,
                                        admin)
        self.store.audit("token created", name=name, admin=admin,
                         collections=list(collections) if collections is not None else "all",
                         **({"by": by} if by else {}))
        self.invalidate()
        return token, secret

    def list(self, include_revoked: bool = False) -> list[ApiToken]:
        return self.store.tokens(include_revoked=include_revoked)

    def revoke(self, name: str, by: str | None = None) -> bool:
        done = self.store.revoke_token(name)
        if done:
            self.store.audit("token revoked", name=name, **({"by": by} if by else {}))
        self.invalidate()
        return done

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = 0.0

    # --- checking -----------------------------------------------------------------------------

    def _tokens(self) -> Sequence[ApiToken]:  # (`list` is a method's name in this class)
        now = time.monotonic()
        if now - self._loaded_at > RELOAD_SECONDS:
            with self._lock:
                if now - self._loaded_at > RELOAD_SECONDS:
                    self._active = self.store.tokens()
                    self._loaded_at = time.monotonic()
        return self._active

    def verify(self, secret: str | None) -> Principal | None:
        """The principal for a presented secret, or None. Every active hash is compared, in
        constant time, so timing says nothing about which (or whether a) token nearly matched."""
        if not secret or len(secret) > 256:
            return None
        found = matching_token(self._tokens(), hash_token(secret))
        if found is None:
            return None
        return Principal(found.name, found.admin, found.collections, found.id)


class Throttle:
    """Failed attempts per address; `retry_after(addr)` > 0 while an address is blocked."""

    def __init__(self, max_failures: int = 10, window: float = 60.0, max_addresses: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str) -> int:
        """Seconds until `address` may try again (0: it may now)."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if times is None or len(times) < self.max_failures:
                return 0
            return max(1, int(self.window - (now - times[-self.max_failures])) + 1)

    def failure(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if times is None:
                times = self._failures[address] = deque(maxlen=self.max_failures * 2)
            times.append(now)
            self._failures.move_to_end(address)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def reset(self, address: str | None = None) -> None:
        with self._lock:
            if address is None:
                self._failures.clear()
            else:
                self._failures.pop(address, None)
