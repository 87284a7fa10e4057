"""Key derivation for the vault: Argon2id(passphrase, salt) -> a raw 32-byte SQLCipher key; and
keeping key material where it can be wiped (bytearrays), and wiping it.

The parameters and salt are not secret; they live in a sidecar file next to the database so that
each vault records the cost it was made with and a later release can raise it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

# One unlock stays inside the 0.3-1.5 s budget on a 2-core laptop-class machine
# (benchmarks/bench_unlock.py); 256 MiB of memory makes guessing expensive on GPUs as well.
DEFAULT_MEMORY_KIB = 262_144
DEFAULT_ITERATIONS = 3
DEFAULT_LANES = 4
KEY_BYTES = 32
_HEX_DIGITS = b"0123456789abcdef"


@dataclass(frozen=True)
class KdfParams:
    salt: bytes
    memory_kib: int = DEFAULT_MEMORY_KIB
    iterations: int = DEFAULT_ITERATIONS
    lanes: int = DEFAULT_LANES
    algorithm: str = "argon2id"

    @classmethod
    def fresh(cls, memory_kib: int = DEFAULT_MEMORY_KIB, iterations: int = DEFAULT_ITERATIONS,
              lanes: int = DEFAULT_LANES) -> KdfParams:
        """Parameters with a new random salt, at the given cost."""
        return cls(os.urandom(16), memory_kib, iterations, lanes)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["salt"] = self.salt.hex()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KdfParams:
        if data.get("algorithm") != "argon2id":
            raise ValueError(f"unknown key derivation {data.get('algorithm')!r}")
        return cls(
            salt=bytes.fromhex(str(data["salt"])),
            memory_kib=int(data["memory_kib"]),
            iterations=int(data["iterations"]),
            lanes=int(data["lanes"]),
        )


def derive_key(passphrase: str, params: KdfParams) -> bytearray:
    """The raw key, as a bytearray so that it can be wiped when the vault is locked. Derived
    straight into that buffer, and the passphrase's UTF-8 copy made for the KDF wiped after it:
    no immutable copy of either is left behind in freed memory."""
    kdf = Argon2id(
        salt=params.salt,
        length=KEY_BYTES,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    secret = passphrase.encode("utf-8")
    key = bytearray(KEY_BYTES)
    try:
        if hasattr(kdf, "derive_into"):  # cryptography >= 47
            kdf.derive_into(secret, key)
        else:  # pragma: no cover - older cryptography: derive() returns bytes; wipe them
            derived = kdf.derive(secret)
            key[:] = derived
            wipe_immutable(derived)
            del derived
    finally:
        wipe_immutable(secret)  # a fresh object (the caller's passphrase stays as it was)
    return key


def wipe(buffer: bytearray) -> None:
    """Zero a key buffer in place."""
    if buffer:
        ctypes.memset((ctypes.c_char * len(buffer)).from_buffer(buffer), 0, len(buffer))


def hex_into(key: bytes | bytearray, out: bytearray, start: int = 0) -> None:
    """Write `key` as lower-case hex digits into `out` at `start`: key.hex() would make an
    immutable str that cannot be wiped."""
    for i, b in enumerate(key):
        out[start + 2 * i] = _HEX_DIGITS[b >> 4]
        out[start + 2 * i + 1] = _HEX_DIGITS[b & 15]


# Where the characters of a bytes object and of a compact ASCII str start, counted from the
# object's address: the object's size when empty, minus the terminating NUL byte.
_BYTES_DATA = sys.getsizeof(b"") - 1
_ASCII_DATA = sys.getsizeof("") - 1


def wipe_immutable(obj: bytes | str) -> None:
    """Zero the characters of a bytes or ASCII str object in place.

    Only for a fresh object that nothing else refers to (a SQL text just executed, an encoding
    made for one call), never for one that may be shared: short strings and bytes are cached
    and interned by CPython, so objects of fewer than 2 characters are left alone, as is
    anything on an interpreter other than CPython (where id() is not an address). Python gives
    no other way to remove a secret from an immutable object before its memory is reused."""
    if sys.implementation.name != "cpython" or len(obj) < 2:
        return
    if isinstance(obj, bytes):
        ctypes.memset(id(obj) + _BYTES_DATA, 0, len(obj))
    elif isinstance(obj, str) and obj.isascii():
        ctypes.memset(id(obj) + _ASCII_DATA, 0, len(obj))
