"""Key derivation for the vault: Argon2id(passphrase, salt) -> a raw 32-byte SQLCipher key.

The parameters and salt are not secret; they live in a sidecar file next to the database so that
each vault records the cost it was made with and a later release can raise it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

# One unlock stays inside the 0.3-1.5 s budget on a 2-core laptop-class machine
# (benchmarks/bench_unlock.py); 256 MiB of memory makes guessing expensive on GPUs as well.
DEFAULT_MEMORY_KIB = 262_144
DEFAULT_ITERATIONS = 3
DEFAULT_LANES = 4


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
    """The raw key, as a bytearray so that it can be wiped when the vault is locked."""
    kdf = Argon2id(
        salt=params.salt,
        length=32,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return bytearray(kdf.derive(passphrase.encode("utf-8")))


def wipe(buffer: bytearray) -> None:
    for i in range(len(buffer)):
        buffer[i] = 0
