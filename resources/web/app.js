// RagDesk thin web client: sign in with a token, ask, read the streamed answer and its sources.
// Document text is untrusted: it is only ever put on the page with textContent.
"use strict";

(function () {
  const KEY = "ragdesk-token";
  const $ = (id) => document.getElementById(id);
  let controller = null;
  let conversationId = null;

  function token() { return sessionStorage.getItem(KEY); }

  function show(signedIn, name) {
    $("signin-view").hidden = signedIn;
    $("ask-view").hidden = !signedIn;
    $("account").hidden = !signedIn;
    $("who").textContent = signedIn ? "Signed in as " + name : "";
    if (signedIn) { $("question").focus(); } else { $("token").focus(); }
  }

  async function whoAmI(secret) {
    const r = await fetch("/api/v1/me", { headers: { Authorization: "Bearer " + secret } });
    if (!r.ok) { throw new Error(r.status === 429 ? "Too many failed attempts; wait a minute." : "That token was not accepted."); }
    return r.json();
  }

  async function signIn(event) {
    event.preventDefault();
    const secret = $("token").value.trim();
    $("signin-error").textContent = "";
    try {
      const me = await whoAmI(secret);
      sessionStorage.setItem(KEY, secret);
      $("token").value = "";
      show(true, me.name);
    } catch (err) {
      $("signin-error").textContent = err.message;
    }
  }

  function signOut() {
    if (controller) { controller.abort(); }
    sessionStorage.removeItem(KEY);
    conversationId = null;
    clearAnswer();
    show(false, "");
  }

  function clearAnswer() {
    $("answer").textContent = "";
    $("check").textContent = "";
    $("notice").textContent = "";
    $("citations").replaceChildren();
    $("citations-title").hidden = true;
  }

  function renderCitations(citations) {
    const list = $("citations");
    list.replaceChildren();
    for (const c of citations) {
      const li = document.createElement("li");
      li.value = c.n;
      const title = document.createElement("strong");
      title.textContent = c.title;
      const where = document.createElement("div");
      where.className = "where";
      where.textContent = (c.page ? "page " + c.page + " — " : "") + c.path;
      const quote = document.createElement("blockquote");
      quote.textContent = c.snippet || c.text || "";
      li.append(title, where, quote);
      list.append(li);
    }
    $("citations-title").hidden = citations.length === 0;
  }

  // Each sentence held against its sources (the done event's grounding): the ones they do not
  // support, or that cite none, are underlined with dots, the reason and the closest passage in
  // their title; the count goes under the answer. Text only, never markup.
  function why(s) {
    let text = s.verdict === "uncited" ? "Uncited claim: no source is given for this sentence."
                                         : "Not supported by its sources: " + s.reason + ".";
    const c = s.closest;
    if (c) { text += "\nClosest passage: [" + c.n + "] " + c.title + (c.page ? ", p. " + c.page : "") + ": “" + c.text + "”"; }
    return text;
  }

  function markAnswer(grounding) {
    const answer = $("answer");
    const text = answer.textContent;
    const parts = [];
    let pos = 0;
    for (const s of grounding.sentences) {
      if (s.verdict !== "not supported" && s.verdict !== "uncited") { continue; }
      const at = text.indexOf(s.text, pos);
      if (at < 0) { continue; }
      parts.push(document.createTextNode(text.slice(pos, at)));
      const span = document.createElement("span");
      span.className = "unsupported";
      span.textContent = s.text;
      span.title = why(s);
      parts.push(span);
      pos = at + s.text.length;
    }
    if (!parts.length) { return; }
    parts.push(document.createTextNode(text.slice(pos)));
    answer.replaceChildren(...parts);
  }

  function handle(event, data) {
    if (event === "token") {
      $("answer").append(document.createTextNode(data.text));
    } else if (event === "sources") {
      $("status").textContent = data.length ? "Found " + data.length + " passages; answering…" : "No matching passages; answering…";
    } else if (event === "notice") {
      $("notice").textContent = data.text;
    } else if (event === "citations") {
      renderCitations(data);
    } else if (event === "done") {
      conversationId = data.conversation_id;
      if (data.grounding && data.grounding.summary) {
        markAnswer(data.grounding);
        const flagged = data.grounding.sentences.some((x) => x.verdict === "not supported" || x.verdict === "uncited");
        $("check").textContent = (flagged ? "⚠ " : "✓ ") + data.grounding.summary;
      }
      $("status").textContent = data.mode === "extractive" ? "Extractive answer (no model available)" : "Done";
    } else if (event === "error") {
      $("notice").textContent = data.detail;
    }
  }

  function parseBlock(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) { event = line.slice(6).trim(); }
      else if (line.startsWith("data:")) { data.push(line.slice(5).replace(/^ /, "")); }
    }
    if (data.length) { handle(event, JSON.parse(data.join("\n"))); }
  }

  async function ask(event) {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question) { return; }
    clearAnswer();
    $("status").textContent = "Searching…";
    $("ask").disabled = true;
    $("stop").disabled = false;
    controller = new AbortController();
    try {
      const body = { question: question };
      if (conversationId !== null) { body.conversation_id = conversationId; }
      const r = await fetch("/api/v1/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token() },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (r.status === 401) { signOut(); $("signin-error").textContent = "The token is no longer valid."; return; }
      if (!r.ok) {
        let detail = "The server answered " + r.status + ".";
        try { const j = await r.json(); if (typeof j.detail === "string") { detail = j.detail; } } catch (e) { /* not JSON */ }
        if (r.status === 404 && body.conversation_id !== undefined) {
          // The server restarted, or another server behind the same address took the question.
          conversationId = null;
          detail = "The server no longer knows this conversation (it restarted, or another server " +
                   "answered). Ask again to start a new conversation.";
        }
        $("notice").textContent = detail;
        $("status").textContent = "";
        return;
      }
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) { break; }
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) !== -1) {
          parseBlock(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
      }
    } catch (err) {
      $("status").textContent = err.name === "AbortError" ? "Stopped" : "The connection failed.";
    } finally {
      controller = null;
      $("ask").disabled = false;
      $("stop").disabled = true;
    }
  }

  document.addEventListener("DOMContentLoaded", async function () {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("ask-form").addEventListener("submit", ask);
    $("stop").addEventListener("click", function () { if (controller) { controller.abort(); } });
    $("new-conversation").addEventListener("click", function () { conversationId = null; clearAnswer(); $("status").textContent = ""; });
    const saved = token();
    if (saved) {
      try { show(true, (await whoAmI(saved)).name); return; } catch (e) { sessionStorage.removeItem(KEY); }
    }
    show(false, "");
  });
})();
