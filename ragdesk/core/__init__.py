"""The core: storage, extraction, chunking, embedding, indexing, retrieval and chat. No Qt here."""
