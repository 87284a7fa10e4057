"""The doctor's checks of the search index, for the vault and PostgreSQL alike: one vector per
chunk, made by the embedder the store is configured to use, of the dimension it makes."""

from __future__ import annotations

from dataclasses import asdict

from ragdesk.cli.doctor.checks import FAIL, PASS, RESTORE_REMEDY, SKIP, WARN, Check, Context


def vectors(ctx: Context) -> Check:
    """Every document's chunk count holds, and every chunk has its vector (`vault.vectors`)."""
    health = ctx.health
    if health is None or health.problems or not health.counts:
        return Check("vault.vectors", SKIP, "skipped: the vault's tables could not be read")
    details = {"documents": health.documents, "chunks": health.chunks, "vectors": health.vectors}
    if ctx.mismatched_documents:
        return Check("vault.vectors", FAIL,
                     f"{ctx.mismatched_documents} document(s) disagree with their chunk count",
                     "index those folders again (`ragdesk sync`), or " + RESTORE_REMEDY, details)
    count = health.vectors or 0
    if count != health.chunks:
        return Check("vault.vectors", FAIL,
                     f"{health.chunks} chunks but {count} vectors: search misses part of the text",
                     "index the affected folders again (`ragdesk index FOLDER`), or " + RESTORE_REMEDY,
                     details)
    if not health.chunks:
        return Check("vault.vectors", PASS, "no documents indexed yet", details=details)
    return Check("vault.vectors", PASS,
                 f"{health.documents} documents, {health.chunks} chunks, one vector each",
                 details=details)


def embedder(ctx: Context) -> Check:
    """The configured embedder and the store's vectors agree on model and dimension."""
    from ragdesk.core.embedding import BUILTIN_MODEL

    health = ctx.health
    name = "db.embedder" if ctx.database else "vault.embedder"
    if health is None or health.problems or not health.counts:
        reason = "needs the passphrase" if ctx.passphrase is None and ctx.has_vault else (
            "there is no vault" if not ctx.has_vault else "the vault could not be read")
        if ctx.database:
            reason = "needs the passphrase" if ctx.passphrase is None else \
                "the database's contents could not be read"
        return Check(name, SKIP, f"skipped: {reason}")
    choice = ctx.embedder_choice
    if choice.get("kind") == "ollama":
        expected_name, expected_dim = f"ollama:{choice.get('model')}", None
    else:
        expected_name, expected_dim = f"builtin:{BUILTIN_MODEL}", ctx.builtin_dimension
    space = health.vector_space
    details = {"configured": expected_name, "vault": asdict(space) if space else None}
    if space is None:
        if health.chunks:
            return Check(name, FAIL, "the vault has chunks but no record of their embedder",
                         "index the folders again, or " + RESTORE_REMEDY, details)
        return Check(name, PASS, f"no vectors yet; {expected_name} will make them",
                     details=details)
    if space.embedder != expected_name:
        return Check(name, WARN,
                     f"the vectors were made by {space.embedder}, but {expected_name} is configured",
                     "run `ragdesk sync` to re-embed with the configured model, or switch back in"
                     " Settings", details)
    if expected_dim is not None and space.dimension != expected_dim:
        return Check(name, FAIL,
                     f"the vault's vectors have {space.dimension} dimensions, the model makes"
                     f" {expected_dim}", "re-index the collections (`ragdesk sync`)", details)
    return Check(name, PASS, f"{space.embedder}, {space.dimension} dimensions",
                 details=details)
