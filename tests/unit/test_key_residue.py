"""What is left of a vault's key and passphrase in the process once it is locked (issue 19,
item 11), measured by scanning the process's own memory (tests/memscan.py).

Before the fix, lock() + a garbage collection left 5 copies of the key's hex in memory (the
immutable `PRAGMA key` strings); a running server held 10. The documented residual after lock
(docs/security.md) is: no copy of the key's hex, no copy of the raw key, and the passphrase only
where the caller still holds its own str (the command line wipes its copy once the store is
open; these tests do the same). One copy of the passphrase survives in memory the key derivation
(cryptography -> OpenSSL's Argon2id) used and freed without zeroing, outside our reach;
RESIDUAL_PASSPHRASE allows for it."""

from __future__ import annotations

import gc
import os
import sys
import threading
from pathlib import Path

import pytest

from ragdesk.core.store.keys import KdfParams, wipe_immutable
from ragdesk.core.store.sqlite import backup, inspect
from ragdesk.core.store.sqlite import vault as vault_store
from tests.fakes.documents import put_documents
from tests.memscan import hex_of, scan

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/mem")

RESIDUAL_HEX = 0
RESIDUAL_RAW = 0
RESIDUAL_PASSPHRASE = 1


def _kdf() -> KdfParams:
    return KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1)


def _secret() -> bytearray:
    """A passphrase that appears nowhere else: no literal in a code object, no interned copy."""
    return bytearray(b"residue " + os.urandom(12).hex().encode("ascii"))


def test_after_lock_no_key_material_is_left(home: Path, tmp_path: Path) -> None:
    first, second = _secret(), _secret()
    passphrase = first.decode("ascii")
    vault_store.create(home, passphrase, kdf=_kdf()).lock()
    v = vault_store.unlock(home, passphrase)
    raw = bytearray(v._key)  # the needle (its own buffer is not counted)
    hexed = hex_of(raw)

    # Work as a session does: documents and searches from several threads (one connection
    # each), a backup and a doctor-style inspection beside it, a conversation.
    put_documents(v, {"/d/a.pdf": [(1, "alpha beta gamma"), (2, "delta epsilon")],
                      "/d/b.pdf": [(1, "zeta eta theta")]})

    def work(store: vault_store.Vault) -> None:
        for _ in range(3):
            assert store.keyword_search("alpha", 5)
            store.documents()

    threads = [threading.Thread(target=work, args=(v,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conversation = v.create_conversation("c")
    v.add_message(conversation.id, "user", "what is alpha?")
    backup.create_backup(home, passphrase, tmp_path / "backups")
    with inspect.open_readonly(home, passphrase) as opened:
        opened.health()

    while_open = scan({"hex": hexed, "raw": raw})
    assert while_open["hex"] == 0, "the key's hex is never kept, not even while unlocked"

    v.lock()
    wipe_immutable(passphrase)  # as the command line does with its own copy once the store is open
    del v, threads, passphrase
    gc.collect()
    found = scan({"hex": hexed, "raw": raw, "passphrase": first, "other": second})
    assert found["other"] == 0  # the scan itself finds nothing that was never used
    assert found["hex"] <= RESIDUAL_HEX, found
    assert found["raw"] <= RESIDUAL_RAW, found
    assert found["passphrase"] <= RESIDUAL_PASSPHRASE, found


def test_after_a_passphrase_change_neither_key_is_left(home: Path) -> None:
    first, second = _secret(), _secret()
    old, new = first.decode("ascii"), second.decode("ascii")
    v = vault_store.create(home, old, kdf=_kdf())
    old_raw = bytearray(v._key)
    v.change_passphrase(new, kdf=_kdf())
    new_raw = bytearray(v._key)
    v.set_setting("after", "the change")
    v.lock()
    wipe_immutable(old)
    wipe_immutable(new)
    del v, old, new
    gc.collect()
    found = scan({"old hex": hex_of(old_raw), "new hex": hex_of(new_raw), "old raw": old_raw,
                  "new raw": new_raw})
    assert found == {"old hex": 0, "new hex": 0, "old raw": 0, "new raw": 0}, found
    left = scan({"old": first, "new": second})
    assert left["old"] <= RESIDUAL_PASSPHRASE and left["new"] <= RESIDUAL_PASSPHRASE, left
