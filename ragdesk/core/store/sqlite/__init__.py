"""The encrypted SQLite vault (SQLCipher + sqlite-vec + FTS5): the default store."""
