"""The built-in web client in headless Chromium (Debian's chromium + chromium-driver, installed by
scripts/install-system-deps; no browser download), against the real TLS server. Chromium trusts
exactly the server's key (--ignore-certificate-errors-spki-list), as a pinned certificate."""

from __future__ import annotations

import base64
import hashlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.fakes.server import Running

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="chromium and chromium-driver are not installed (scripts/install-system-deps)"),
]


def spki_hash(cert_pem: str) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def browser(server: Running, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-default-apps", "--disable-extensions",
                 "--metrics-recording-only", "--no-default-browser-check", "--window-size=1100,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                 f"--ignore-certificate-errors-spki-list={spki_hash(server.handle.cert_pem or '')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition, timeout: float = 15.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def signed_in(d, server: Running, name: str):  # type: ignore[no-untyped-def]
    """The page signed in (with a new token called `name` unless an earlier test signed in);
    returns a lookup of elements by id."""
    from selenium.webdriver.common.by import By

    el = lambda i: d.find_element(By.ID, i)  # noqa: E731
    if not d.current_url.startswith(server.url):  # run on its own (-k), not after the sign-in test
        d.get(server.url)
    if not el("ask-view").is_displayed():
        el("token").send_keys(server.token(name))
        el("signin").click()
        wait_for(lambda: el("ask-view").is_displayed(), what="the ask view")
    return el


def ask_anew(el, question: str) -> None:  # type: ignore[no-untyped-def]
    """Start a new conversation with `question` and wait for its answer."""
    el("new-conversation").click()
    el("question").clear()
    el("question").send_keys(question)
    el("ask").click()
    wait_for(lambda: el("status").text == "Done", timeout=30, what="the answer")


def test_sign_in_ask_stream_and_cite(server: Running, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    secret = server.token("browser-user")
    d = browser
    d.get(server.url)
    el = lambda i: d.find_element(By.ID, i)  # noqa: E731
    assert el("signin-view").is_displayed() and not el("ask-view").is_displayed()

    el("token").send_keys("rd_not-a-real-token")
    el("signin").click()
    wait_for(lambda: el("signin-error").text, what="sign-in error")
    assert "not accepted" in el("signin-error").text

    el("token").clear()
    el("token").send_keys(secret)
    el("signin").click()
    wait_for(lambda: el("ask-view").is_displayed(), what="the ask view")
    assert el("who").text == "Signed in as browser-user"

    server.fake.fault("slow_every_token", 0.08)
    try:
        el("question").send_keys("What is the lighthouse budget?")
        el("ask").click()
        # The answer is shown while it streams: text present while Stop is still enabled.
        wait_for(lambda: el("answer").text and el("stop").is_enabled(), what="a partly streamed answer")
        wait_for(lambda: el("status").text == "Done", timeout=30, what="the end of the answer")
    finally:
        server.fake.clear()
    assert "4.2 million" in el("answer").text and "[1]" in el("answer").text
    items = d.find_elements(By.CSS_SELECTOR, "#citations li")
    assert items and "budget.pdf" in items[0].text and "/docs/budget.pdf" in items[0].text
    assert "4.2 million" in items[0].find_element(By.TAG_NAME, "blockquote").text

    d.save_screenshot(str(Path(server.home) / ".." / "web-client.png"))
    # No script error and no CSP violation (the one network error is the wrong token's 401).
    errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]
    assert not errors, errors


def test_document_text_is_shown_never_run(server: Running, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    d = browser
    el = signed_in(d, server, "browser-user-2")
    ask_anew(el, "hostile note lighthouse budget")
    page_text = el("citations").text + el("answer").text
    assert "onerror" in page_text or "<script>" in page_text, "the hostile passage is shown as text"
    assert not d.find_elements(By.CSS_SELECTOR,
                               "#citations img, #answer img, #citations script, #answer script")
    assert d.execute_script("return window.pwned === undefined")
    # The page's own policy forbids inline script even if some were injected.
    assert d.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.inline = 1';"
        "document.body.append(s); return window.inline === undefined;")


def test_a_follow_up_the_server_no_longer_knows_starts_over(server: Running, browser) -> None:  # type: ignore[no-untyped-def]
    d = browser
    el = signed_in(d, server, "browser-user-3")
    ask_anew(el, "What is the lighthouse budget?")
    # The instance that held the conversation is gone (restart, or nginx sent the follow-up to
    # another instance): the server answers 404 and the page says what to do.
    memory = server.handle.app.state.ctx.memory
    with memory._lock:
        memory._items.clear()
    el("question").clear()
    el("question").send_keys("And how many keepers?")
    el("ask").click()
    wait_for(lambda: el("notice").text, what="the notice")
    assert "no longer knows this conversation" in el("notice").text
    el("ask").click()  # asked again: a new conversation, answered
    wait_for(lambda: el("status").text == "Done", timeout=30, what="the answer in a new conversation")
    assert el("answer").text and not el("notice").text


def test_unsupported_sentences_are_marked_in_the_page(server: Running, browser) -> None:  # type: ignore[no-untyped-def]
    """Issue 22: the done event's verdicts underline the sentences the sources do not support,
    or that cite none, with the reason in their title, and the count goes under the answer."""
    from selenium.webdriver.common.by import By

    d = browser
    el = signed_in(d, server, "browser-user-4")
    server.fake.script("The annual budget for the lighthouse project is 4.2 million euros [1]. "
                       "The budget was approved by Harriet <b>Vance</b> [1]. Lighthouses are painted red.")
    ask_anew(el, "What is the lighthouse budget?")
    marked = d.find_elements(By.CSS_SELECTOR, "#answer span.unsupported")
    assert [m.text for m in marked] == ["The budget was approved by Harriet <b>Vance</b> [1].",
                                        "Lighthouses are painted red."]
    assert "Not supported by its sources" in marked[0].get_attribute("title")
    assert "Closest passage: [1]" in marked[0].get_attribute("title")
    assert "Uncited claim" in marked[1].get_attribute("title")
    assert not d.find_elements(By.CSS_SELECTOR, "#answer b")  # text, never markup
    assert el("check").text == "⚠ 1 of 3 sentences supported by their sources"
    assert el("answer").text.startswith("The annual budget for the lighthouse project is 4.2 million")
