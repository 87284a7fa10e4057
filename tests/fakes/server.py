"""Shared set-up for the LAN server tests (a pytest plugin: the `server` fixture): a vault with
a few documents, the fake Ollama, and a real uvicorn server with TLS on an ephemeral loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ragdesk.app import Services
from ragdesk.core.store.sqlite import vault as vault_store
from ragdesk.core.store.sqlite.vault import Vault
from ragdesk.server.config import Limits, ServerConfig
from ragdesk.server.runner import ServerHandle
from ragdesk.server.tls import client_context
from tests.conftest import PASSPHRASE, fast_kdf
from tests.fakes.documents import put_documents
from tests.fakes.embedder import HashEmbedder
from tests.fakes.ollama import FakeOllama

DOCS = {
    ("default", "/docs/budget.pdf"): [
        (1, "The annual budget for the lighthouse project is 4.2 million euros. It was approved in March."),
        (2, "Staffing costs take up most of the lighthouse budget. Twelve keepers are employed."),
    ],
    ("default", "/docs/whales.txt"): [
        (1, "Humpback whales migrate thousands of kilometres each year. They sing complex songs."),
    ],
    ("default", "/docs/hostile.html"): [
        (1, 'Lighthouse budget hostile note <img src=x onerror="window.pwned=1"> '
            "<script>window.pwned=2</script> end."),
    ],
    ("legal", "/legal/contract.txt"): [
        (1, "The contract may be terminated with ninety days written notice by either party."),
    ],
}


def fill(vault: Vault) -> None:
    put_documents(vault, DOCS)


@dataclass
class Running:
    handle: ServerHandle
    vault: Vault
    fake: FakeOllama
    home: Path

    @property
    def url(self) -> str:
        return self.handle.url

    @property
    def verify(self):  # type: ignore[no-untyped-def]
        assert self.handle.cert_pem is not None
        return client_context(self.handle.cert_pem)

    def token(self, name: str, collections: list[str] | None = None, admin: bool = False) -> str:
        return self.handle.tokens.create(name, collections=collections, admin=admin)[1]

    def client(self, token: str | None, source: str | None = None, **kwargs) -> httpx.Client:  # type: ignore[no-untyped-def]
        """A client with `token`; `source`: the loopback address it connects from (127.0.0.2,
        ...: another client as the server sees it, since X-Forwarded-For is not believed)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        if source is not None:
            kwargs["transport"] = httpx.HTTPTransport(verify=self.verify, local_address=source)
        return httpx.Client(base_url=self.url, verify=self.verify, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One server per test module (starting one costs about 0.3 s; the vault is shared)."""
    home = tmp_path_factory.mktemp("server-home")
    vault = vault_store.create(home, PASSPHRASE, kdf=fast_kdf())
    fill(vault)
    with FakeOllama() as fake:
        vault.set_setting("ollama_host", fake.host)
        services = Services(store=vault, home=home, _embedder=HashEmbedder())
        limits = Limits(max_streams=20, max_streams_per_token=3, auth_failures=5, auth_window=30.0,
                        max_body_bytes=64 * 1024, max_upload_bytes=256 * 1024, max_question_chars=500,
                        stream_timeout=20.0)
        handle = ServerHandle(services, ServerConfig(port=0, limits=limits))
        handle.start()
        try:
            yield Running(handle, vault, fake, home)
        finally:
            handle.stop()
    vault.lock()


def sse_events(response: httpx.Response) -> list[tuple[str, str]]:
    """(event, data) pairs of a server-sent-event stream."""
    out: list[tuple[str, str]] = []
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif line == "" and data:
            out.append((event, "\n".join(data)))
            event, data = "message", []
    if data:
        out.append((event, "\n".join(data)))
    return out
