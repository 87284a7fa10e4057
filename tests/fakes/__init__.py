"""Deterministic stand-ins for RagDesk's outside collaborators, used through the real interfaces.

`tests.fakes.ollama` is an Ollama-compatible HTTP server driven through the official `ollama`
client; `tests.fakes.fixtures` holds the pytest fixtures that start it.
"""
