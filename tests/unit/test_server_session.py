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
