"""The server's capacity levers on their own: questions embedded in batches, the search queue's
admission (server/capacity.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from ragdesk.server.capacity import QuestionEmbedder, QueueFull, SearchQueue
from tests.fakes.embedder import HashEmbedder


class Recording(HashEmbedder):
    """The hash embedder, recording each call's batch and taking `per_text` seconds a text."""

    def __init__(self, per_text: float = 0.0, fail: bool = False) -> None:
        super().__init__(64)
        self.calls: list[list[str]] = []
        self.per_text = per_text
        self.fail = fail

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        time.sleep(self.per_text * len(texts))
        if self.fail:
            raise RuntimeError("the model is gone")
        return super().embed(texts)


def ask_together(embedder: QuestionEmbedder, texts: list[str]) -> list[np.ndarray | BaseException]:
    out: list[np.ndarray | BaseException] = [np.zeros(0)] * len(texts)
    go = threading.Barrier(len(texts))

    def one(i: int) -> None:
        go.wait()
        try:
            out[i] = embedder.embed_query(texts[i])
        except BaseException as exc:  # kept for the assertion
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return out


def test_questions_asked_together_are_embedded_together_each_getting_its_own_vector() -> None:
    inner = Recording(per_text=0.01)
    questions = QuestionEmbedder(lambda: inner, window=0.01)
    texts = [f"question number {i} about lighthouse {i * 7}" for i in range(12)]
    try:
        vectors = ask_together(questions, texts)
    finally:
        questions.close()
    reference = HashEmbedder(64).embed(texts)
    for i, v in enumerate(vectors):
        assert isinstance(v, np.ndarray)
        np.testing.assert_allclose(v, reference[i])
    assert sum(len(c) for c in inner.calls) == len(texts)
    assert len(inner.calls) < len(texts) / 2  # batched, not one call per question
    assert questions.batches == len(inner.calls) and questions.embedded == len(texts)


def test_a_prepared_question_is_embedded_once_and_shared_until_released() -> None:
    inner = Recording()
    questions = QuestionEmbedder(lambda: inner, window=0.0)
    try:
        key = questions.prepare("what is the budget")
        again = questions.prepare("what is the budget")  # a second user, the same words
        first = questions.embed_query("what is the budget")
        second = questions.embed_query("what is the budget")
        np.testing.assert_array_equal(first, second)
        assert inner.calls == [["what is the budget"]]
        questions.release(key)
        questions.release(again)
        questions.embed_query("what is the budget")  # released: embedded anew
        assert len(inner.calls) == 2
    finally:
        questions.close()


def test_an_embedding_failure_reaches_every_question_of_the_batch() -> None:
    inner = Recording(per_text=0.01, fail=True)
    questions = QuestionEmbedder(lambda: inner, window=0.01)
    try:
        results = ask_together(questions, ["one question", "another question", "a third"])
    finally:
        questions.close()
    assert all(isinstance(r, RuntimeError) and "model is gone" in str(r) for r in results)


def test_after_close_a_question_fails_at_once_instead_of_waiting() -> None:
    questions = QuestionEmbedder(lambda: Recording())
    questions.embed_query("warm")
    questions.close()
    with pytest.raises(RuntimeError, match="stopping"):
        questions.embed_query("too late")


def test_the_queue_admits_while_a_thread_is_free_and_refuses_past_the_budget() -> None:
    q = SearchQueue(workers=2, budget=0.5, first_guess=0.1)
    q.check()
    q.enter()
    q.enter()  # both threads busy; nobody waits yet: a third starts after one search
    q.check()
    for _ in range(10):
        q.enter()
    assert q.predicted_wait() == pytest.approx(11 * 0.1 / 2)  # 11 searches ahead, 2 threads
    with pytest.raises(QueueFull) as refused:
        q.check()
    assert refused.value.retry_after == 1
    for _ in range(12):
        q.leave(0.01)  # searches turned out fast: the average follows
    assert q.pending == 0 and q.search_seconds < 0.02
    q.check()


def test_a_slow_first_search_does_not_shut_the_door_while_a_thread_is_free() -> None:
    q = SearchQueue(workers=2, budget=0.5)
    q.enter()
    q.leave(5.0)  # the first search loaded the vectors
    q.check()  # threads are free: admitted however slow searches were
    q.enter()
    q.enter()
    q.enter()
    with pytest.raises(QueueFull) as refused:
        q.check()
    assert 1 <= refused.value.retry_after <= 30


def test_one_slow_search_does_not_close_the_door_but_a_slowdown_does() -> None:
    """The wait predicted is the searches ahead times their mean: one slow search among many
    (a garbage collection) moves it little; searches that stay slow move it all the way."""
    q = SearchQueue(workers=1, budget=0.5)
    for _ in range(31):
        q.enter()
        q.leave(0.015)
    q.enter()
    q.leave(0.150)
    for _ in range(13):  # 13 answers ahead, ~20 ms each: sources within 0.3 s
        q.enter()
    q.check()
    for _ in range(32):  # every search now takes 60 ms: 13 ahead is 0.8 s
        q.enter()
        q.leave(0.060)
    with pytest.raises(QueueFull):
        q.check()
