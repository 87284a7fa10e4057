"""The one place that talks to Ollama's HTTP API setup: the host to use, the client factory
(TLS context, no proxy from the environment) and the text of its errors.

Everything that reaches Ollama — chat, the Ollama embedder, doctor, the GUI's settings and the
LAN server — gets its host and its client here, so the rules (zero egress through proxies, one
CA bundle load per process, messages a user can act on) are written once.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Any, Protocol

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


class _Settings(Protocol):
    def get_setting(self, key: str, default: Any = None) -> Any: ...


def normalise_host(host: str) -> str:
    """`127.0.0.1:11434` as a person types it -> `http://127.0.0.1:11434`."""
    host = host.strip()
    return host if "://" in host else "http://" + host


def ollama_host(store: _Settings | None = None) -> str:
    """$OLLAMA_HOST wins, then the vault's setting, then Ollama's own default."""
    host = os.environ.get("OLLAMA_HOST") or (store.get_setting("ollama_host") if store else None)
    return normalise_host(host or DEFAULT_OLLAMA_HOST)


class OllamaProblem(Exception):
    """Why the model could not answer: `message` for the user, `remedy` what to do."""

    def __init__(self, message: str, remedy: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy


@functools.cache
def tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~100 ms of CPU: once per process, not once per answer.
    return ssl.create_default_context()


def make_client(host: str, timeout: float = 300.0, connect_timeout: float = 5.0) -> Any:
    import httpx
    import ollama

    # trust_env=False: no proxy from the environment may carry vault text off this machine.
    return ollama.Client(host=host, timeout=httpx.Timeout(timeout, connect=connect_timeout),
                         trust_env=False, verify=tls_context())


def missing_model_remedy(model: str) -> str:
    return (f"run `ollama pull {model}`, or on a machine with no network copy the model's GGUF"
            f" file over and run `ollama create {model} -f Modelfile` (Modelfile: `FROM ./model.gguf`)")


def describe_error(exc: BaseException, host: str, model: str | None) -> OllamaProblem:
    """Sort what the client raised into a message and a remedy a user can act on."""
    import httpx
    import ollama

    if isinstance(exc, ollama.ResponseError):
        if exc.status_code == 404 and model:
            return OllamaProblem(f"the model {model} is not installed in Ollama at {host}",
                                 missing_model_remedy(model))
        return OllamaProblem(f"Ollama at {host} failed: {exc.error} (HTTP {exc.status_code})",
                             "try again; if it persists, check Ollama's log")
    if isinstance(exc, (ConnectionError, httpx.ConnectError)):
        return OllamaProblem(f"Ollama is not reachable at {host}",
                             "start Ollama (`ollama serve`) or set its address in Settings or OLLAMA_HOST")
    if isinstance(exc, httpx.TimeoutException):
        return OllamaProblem(f"Ollama at {host} did not answer in time",
                             "the model may still be loading; try again")
    if isinstance(exc, (httpx.HTTPError, OSError, ValueError)):
        return OllamaProblem(f"the connection to Ollama at {host} broke off ({type(exc).__name__})",
                             "try again")
    return OllamaProblem(f"Ollama at {host} failed ({type(exc).__name__}: {exc})", "try again")


