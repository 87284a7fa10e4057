"""Pytest fixtures that start the fake Ollama server (loaded through ``pytest_plugins``).

``fake_ollama`` yields a running `FakeOllama` with the default models and stops it afterwards.
Other models: ``@pytest.mark.parametrize("fake_ollama", [["qwen3:4b"]], indirect=True)``.
``ollama_refused_host`` is a loopback URL where nothing listens.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.ollama import DEFAULT_MODELS, FakeOllama


@pytest.fixture
def fake_ollama(request: pytest.FixtureRequest) -> Iterator[FakeOllama]:
    models = getattr(request, "param", None) or DEFAULT_MODELS
    with FakeOllama(models) as fake:
        yield fake


@pytest.fixture
def ollama_refused_host() -> str:
    return FakeOllama.unused_host()
