"""The indexer (in-process, HashEmbedder) and grounded chat (fake Ollama) running on the
PostgreSQL store: the unit suites' own tests, re-run with `vault` bound to a PostgresStore."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.test_chat import (  # noqa: F401 - collected here again, on PostgreSQL
    filled,
    test_follow_up_about_a_page_uses_the_conversation,
    test_no_documents_at_all,
    test_ollama_down_gives_labelled_extractive_answer,
    test_prompt_quotes_documents_and_sets_the_context,
    test_stream_cut_keeps_the_partial_answer,
    test_streamed_answer_cites_the_sources,
)
from tests.unit.test_indexer import (  # noqa: F401
    test_cancel_between_steps_keeps_finished_documents,
    test_unchanged_files_are_not_read_again,
)


@pytest.fixture
def vault(pg_store: Any) -> Iterator[Any]:
    """Shadows the SQLite `vault` fixture for the tests imported above."""
    yield pg_store
