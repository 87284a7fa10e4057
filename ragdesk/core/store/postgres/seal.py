"""AES-GCM sealing of what the PostgreSQL store keeps secret, under a key from the passphrase.

Community PostgreSQL has no transparent data encryption. RagDesk encrypts what is most sensitive
itself: the original file bytes and the LAN server's private key, with AES-GCM under a key derived
from the server passphrase by Argon2id (salt and cost in the `storage.kdf` settings row, with a
sealed check value that tells a wrong passphrase at once). Text, chunks and vectors are plain
inside the database: its data directory must sit on an encrypted volume
(installer/postgres/README.md), and connections should use `sslmode=verify-full`.

A sealed value is a 12-byte nonce + ciphertext + tag; its associated data names what it is (an
original's document id, the server key), so a value moved to another row fails its check.
"""

from __future__ import annotations

import hmac
import json
import os
import time

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg_pool import ConnectionPool

from ragdesk.core.store.keys import KdfParams, derive_key, wipe
from ragdesk.core.store.postgres.schema import MIGRATION_LOCK
from ragdesk.errors import StorageError, WrongPassphrase

KDF_SETTING = "storage.kdf"  # the settings row of the key: never set or copied like a setting
SERVER_KEY_AAD = b"ragdesk server key"
_KEY_CHECK = b"ragdesk key check"


def original_aad(document_id: int) -> bytes:
    return b"ragdesk original %d" % document_id


def seal(key: bytearray, data: bytes, aad: bytes) -> bytes:
    if not key:
        raise StorageError("the store is closed")
    nonce = os.urandom(12)
    return nonce + AESGCM(bytes(key)).encrypt(nonce, data, aad)


def open_sealed(key: bytearray, blob: bytes, aad: bytes) -> bytes:
    if not key:
        raise StorageError("the store is closed")
    try:
        return AESGCM(bytes(key)).decrypt(blob[:12], blob[12:], aad)
    except InvalidTag:
        raise StorageError("a stored original failed its integrity check") from None


def _key_check(key: bytes, nonce: bytes) -> bytes:
    return AESGCM(key).encrypt(nonce, _KEY_CHECK, b"key-check")


def key_record(key: bytearray, params: KdfParams) -> str:
    """The `storage.kdf` row's value for this key: its KDF parameters and a sealed check value."""
    nonce = os.urandom(12)
    return json.dumps({"kdf": params.to_json(), "nonce": nonce.hex(),
                       "check": _key_check(bytes(key), nonce).hex(), "created_at": time.time()})


def unlock_key(
    pool: ConnectionPool, passphrase: str, kdf: KdfParams | None, create: bool
) -> tuple[bytearray, KdfParams]:
    """The AES key: from the stored KDF row (WrongPassphrase if its check fails), or, with
    `create`, a new key and row on first use."""
    with pool.connection() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        row = conn.execute("SELECT value FROM settings WHERE key = %s", (KDF_SETTING,)).fetchone()
        if row is None:
            if not create:
                raise StorageError("the database has no RagDesk key; create it with `ragdesk init`")
            params = kdf or KdfParams.fresh()
            key = derive_key(passphrase, params)
            conn.execute("INSERT INTO settings(key, value) VALUES (%s, %s)",
                         (KDF_SETTING, key_record(key, params)))
            return key, params
    stored = json.loads(row[0])
    params = KdfParams.from_json(stored["kdf"])
    key = derive_key(passphrase, params)
    nonce = bytes.fromhex(stored["nonce"])
    if not hmac.compare_digest(_key_check(bytes(key), nonce), bytes.fromhex(stored["check"])):
        wipe(key)
        raise WrongPassphrase()
    return key, params


def reseal(conn: psycopg.Connection, old_key: bytearray, new_key: bytearray,
           params: KdfParams) -> None:
    """Re-encrypt every original and the server key under `new_key` and record its KDF row, in
    the caller's transaction: a crash leaves the old or the new, never both."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    rows = conn.execute("SELECT document_id, data FROM originals FOR UPDATE").fetchall()
    for document_id, blob in rows:
        aad = original_aad(document_id)
        conn.execute("UPDATE originals SET data = %s WHERE document_id = %s",
                     (seal(new_key, open_sealed(old_key, bytes(blob), aad), aad), document_id))
    row = conn.execute("SELECT key_pem FROM server_identity WHERE id = 1 FOR UPDATE").fetchone()
    if row is not None:
        conn.execute("UPDATE server_identity SET key_pem = %s WHERE id = 1",
                     (seal(new_key, open_sealed(old_key, bytes(row[0]), SERVER_KEY_AAD),
                           SERVER_KEY_AAD),))
    conn.execute("UPDATE settings SET value = %s WHERE key = %s",
                 (key_record(new_key, params), KDF_SETTING))
