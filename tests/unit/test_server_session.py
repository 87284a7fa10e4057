"""Remote conversations kept by one server instance (ragdesk.server.session.ConversationMemory)."""

from __future__ import annotations

from ragdesk.server.session import ConversationMemory


def test_a_follow_up_sent_to_another_instance_is_unknown_there_not_another_conversation() -> None:
    # Two `ragdesk serve` behind nginx each keep their own conversations. The same user (token
    # name) has one on each; a follow-up naming the first must not find the second.
    first, second = ConversationMemory(), ConversationMemory()
    mine = first.create("budget", "alice")
    first.add(mine.id, "alice", "user", "What is the budget?", (), "complete", None)
    other = second.create("keepers", "alice")
    second.add(other.id, "alice", "user", "How many keepers?", (), "complete", None)
    assert mine.id != other.id
    assert second.get(mine.id, "alice") is None
    assert [m.content for m in first.messages(mine.id, "alice")] == ["What is the budget?"]


def test_conversations_belong_to_their_token_and_the_oldest_go_past_the_bound() -> None:
    memory = ConversationMemory(max_conversations=3)
    ids = [memory.create(f"c{i}", "alice").id for i in range(4)]
    assert len(set(ids)) == 4 and all(0 < i < 2**53 for i in ids)
    assert memory.get(ids[0], "alice") is None, "the oldest was dropped"
    assert memory.get(ids[3], "alice") is not None
    assert memory.get(ids[3], "bob") is None, "another token does not see it"


def test_memory_is_bounded_per_message_per_conversation_and_in_all() -> None:
    memory = ConversationMemory(max_message_chars=100, max_conversation_chars=250, max_total_chars=600)
    conv = memory.create("long", "alice#1")
    for i in range(5):
        memory.add(conv.id, "alice#1", "user", str(i) * 120, (), "complete", None)
    kept = memory.messages(conv.id, "alice#1")
    assert all(len(m.content) == 100 for m in kept), "a message is cut at its bound"
    assert [m.content[0] for m in kept] == ["3", "4"], "the oldest messages go past the conversation's bound"
    answer = memory.add(conv.id, "alice#1", "assistant", "", (), "streaming", None)
    memory.update(answer.id, "alice#1", content="z" * 500)
    assert [len(m.content) for m in memory.messages(conv.id, "alice#1")] == [100, 100]
    for i in range(10):
        other = memory.create(f"c{i}", "bob#2")
        memory.add(other.id, "bob#2", "user", "w" * 100, (), "complete", None)
    assert memory.chars <= 600 and memory.get(conv.id, "alice#1") is None, "least recently used dropped"


def test_the_passages_an_answer_cites_count_against_the_bounds() -> None:
    """An answer carries its cited passages (ten chunks can outweigh the answer): held in
    memory, they count. Counting the text alone let 5,000 one-turn conversations hold three
    times what the bound allowed (the soak benchmark)."""
    memory = ConversationMemory(max_conversation_chars=10_000, max_total_chars=30_000)
    passages = [{"n": i, "text": "p" * 900, "path": f"/d/{i}.pdf", "page": i} for i in range(10)]
    for i in range(6):
        conv = memory.create(f"c{i}", "alice#1")
        memory.add(conv.id, "alice#1", "user", "a short question?", (), "complete", None)
        memory.add(conv.id, "alice#1", "assistant", "A short answer [1].", passages, "complete", None)
    assert 9_000 * 3 <= memory.chars <= 30_000, "each conversation counts its ~9,300 characters"
    assert len(memory) == 3, "the least recently used went past the total bound"
