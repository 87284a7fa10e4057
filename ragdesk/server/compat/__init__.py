"""OpenAI- and Ollama-compatible routes, so clients people already use can ask the vault.

Both answer the last user message from the vault's documents (the earlier turns are the
conversation's history; a client's own system prompt is not used: grounding rules are the
server's). Citations come two ways: appended to the answer text as a "Sources:" list that any
client shows, and as structured data in an extra `citations` field. "ragdesk" is always listed
as a model and means the vault's default model.

`router` carries both dialects' routes: compat.openai (/v1/...) and compat.ollama (/api/chat,
/api/tags, /api/version); compat.common holds what they share.
"""

from __future__ import annotations

from fastapi import APIRouter

from ragdesk.server.compat import ollama, openai

__all__ = ["router"]

router = APIRouter()
router.include_router(openai.router)
router.include_router(ollama.router)
