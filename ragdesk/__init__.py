"""RagDesk: ask questions about your own documents, offline, from an encrypted vault."""

__version__ = "0.1.0"
