"""The doctor's check of Ollama: reachable at the host RagDesk would use, with the chat model
and (when the store embeds with Ollama) the embedding model installed."""

from __future__ import annotations

import os
from typing import Any

from ragdesk.cli.doctor.checks import FAIL, PASS, WARN, Check, Context
from ragdesk.core.ollama import (
    describe_error,
    make_client,
    missing_model_remedy,
    normalise_host,
    ollama_host,
)


def ollama(ctx: Context) -> Check:
    if ctx.ollama_host:
        host = normalise_host(ctx.ollama_host)
        origin = "given"
    elif os.environ.get("OLLAMA_HOST"):
        host, origin = ollama_host(None), "OLLAMA_HOST"
    elif ctx.settings.get("ollama_host"):
        host, origin = normalise_host(ctx.settings["ollama_host"]), "the vault's settings"
    else:
        host = ollama_host(None)
        origin = "default" if ctx.passphrase or not ctx.has_vault else \
            "default (the vault's own setting was not read: no passphrase)"
    details: dict[str, Any] = {"host": host, "from": origin}
    client = make_client(host, timeout=ctx.timeout, connect_timeout=ctx.timeout)
    try:
        listing = client.list()
        try:
            details["version"] = client._client.get("/api/version").json().get("version")
        except Exception:  # the version is a nicety
            details["version"] = None
    except Exception as exc:  # sorted into a message
        problem = describe_error(exc, host, None)
        if ctx.embedder_choice.get("kind") == "ollama":  # then indexing and search need it too
            return Check("ollama", FAIL,
                         f"{problem.message}: the vault's embedding model "
                         f"{ctx.embedder_choice.get('model')} runs there, so indexing and search"
                         " cannot work", problem.remedy, details)
        return Check("ollama", WARN,
                     f"{problem.message}: answers fall back to the best passages (extractive mode)",
                     problem.remedy, details)
    finally:
        client.close()
    models = [m.model for m in listing.models]
    details["models"] = models
    chat_models = [m for m in models if "embed" not in (m or "")]
    wanted = ctx.settings.get("chat_model")
    choice = ctx.embedder_choice
    if choice.get("kind") == "ollama":
        embed_model = choice.get("model")
        if not _has_model(models, embed_model):
            return Check("ollama", FAIL, f"the embedding model {embed_model} is not in Ollama at {host}",
                         missing_model_remedy(str(embed_model)), details)
    if wanted and not _has_model(models, wanted):
        return Check("ollama", WARN, f"the chat model {wanted} is not in Ollama at {host}",
                     missing_model_remedy(wanted), details)
    if not chat_models:
        return Check("ollama", WARN, f"Ollama {details.get('version') or ''} at {host} has no chat model",
                     missing_model_remedy("llama3.2"), details)
    return Check("ollama", PASS,
                 f"Ollama {details.get('version') or ''} at {host}: {len(models)} model(s)"
                 + (f", chat model {wanted}" if wanted else f", e.g. {chat_models[0]}"),
                 details=details)


def _has_model(models: list[str], name: str | None) -> bool:
    if not name:
        return False
    return name in models or f"{name}:latest" in models
