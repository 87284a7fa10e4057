"""The encrypted SQLite vault (SQLCipher + sqlite-vec + FTS5): the default store.

    vault.py        `create`, `unlock` and Vault, the Store over one vault folder
    connections.py  each thread's keyed connection, transactions, locking (the key wiped)
    keyfile.py      the one keyed open: the sidecar (vault.json), the raw key, a pending key
    lock.py         the process lock (vault.lock)
    errors.py       SQLite failures sorted into the environment's fault and bugs
    fts.py          keyword search: BM25 computed over FTS5's own index
    vec0.py         the vectors: sqlite-vec's vec0 table, read into the in-RAM index
    vectors.py      VectorIndex, the vectors held in RAM
    schema.py       the ordered, named migrations
    inspect.py      read-only, lock-free looks into a vault file and its health (doctor, backups)
    backup.py       verified, encrypted backups, pruning and restore

Callers outside the store open a vault through `store.open.open_store`.
"""
