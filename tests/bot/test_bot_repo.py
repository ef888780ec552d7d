"""The assistants' records (whatsease/storage/bot.py) against a real SecantusDB."""

from __future__ import annotations

from datetime import timedelta

from whatsease.bot.state import BotState, HistoryEntry
from whatsease.services import Services
from whatsease.storage.bot import BotNote, BotTurn
from whatsease.timeutil import utcnow

BOT = "bot:whatsease"


def _turn(user: str, text: str) -> BotTurn:
    return BotTurn(user=user, bot=BOT, message_id=f"m-{text}", message=text, intent="greet",
                   confidence=0.9, reply="Hi!", reply_message_id=f"r-{text}", source="intent",
                   at=utcnow())


async def test_state_round_trips_per_user_and_bot_and_can_be_forgotten(
        services: Services) -> None:
    repo = services.store.bot
    assert await repo.load_state("ann@t.example", BOT) is None
    now = utcnow()
    state = BotState(context="awaiting_feedback", context_expires_at=now + timedelta(minutes=5),
                     context_turns_left=3, memory={"name": "Ann"},
                     history=[HistoryEntry("user", "hi", now, None)])
    await repo.save_state("ann@t.example", BOT, state.to_dict(), at=now)
    loaded = BotState.from_dict(await repo.load_state("ann@t.example", BOT))
    assert loaded.context == "awaiting_feedback"
    assert loaded.memory == {"name": "Ann"}
    assert [e.text for e in loaded.history] == ["hi"]
    assert await repo.load_state("ann@t.example", "bot:other") is None
    assert await repo.load_state("bob@t.example", BOT) is None
    assert await repo.forget("ann@t.example", BOT) is True
    assert await repo.forget("ann@t.example", BOT) is False
    assert await repo.load_state("ann@t.example", BOT) is None


async def test_turns_page_newest_first_and_only_the_users(services: Services) -> None:
    repo = services.store.bot
    stored = [await repo.add_turn(_turn("cat@t.example", str(i))) for i in range(5)]
    await repo.add_turn(_turn("dan@t.example", "other"))
    assert all(t.id for t in stored)
    page = await repo.turns("cat@t.example", BOT, before=None, limit=3)
    assert [t.message for t in page] == ["4", "3", "2"]
    rest = await repo.turns("cat@t.example", BOT, before=page[-1].id, limit=3)
    assert [t.message for t in rest] == ["1", "0"]
    assert await repo.turns("cat@t.example", "bot:other", before=None, limit=10) == []


async def test_notes_are_kept_by_kind(services: Services) -> None:
    repo = services.store.bot
    at = utcnow()
    await repo.add_note(BotNote("eve@t.example", BOT, "feedback", "lovely", at))
    await repo.add_note(BotNote("eve@t.example", BOT, "complaint", "slow", at))
    assert [n.text for n in await repo.notes("eve@t.example", kind="feedback")] == ["lovely"]
    assert {n.text for n in await repo.notes("eve@t.example")} == {"lovely", "slow"}
    assert await repo.notes("fay@t.example") == []


async def test_erase_drops_everything_about_one_user(services: Services) -> None:
    repo = services.store.bot
    for user in ("gus@t.example", "hal@t.example"):
        await repo.save_state(user, BOT, BotState().to_dict(), at=utcnow())
        await repo.add_turn(_turn(user, "hi"))
        await repo.add_note(BotNote(user, BOT, "feedback", "ok", utcnow()))
    await repo.erase("gus@t.example")
    assert await repo.load_state("gus@t.example", BOT) is None
    assert await repo.turns("gus@t.example", BOT, before=None, limit=10) == []
    assert await repo.notes("gus@t.example") == []
    assert await repo.load_state("hal@t.example", BOT) is not None
    assert len(await repo.turns("hal@t.example", BOT, before=None, limit=10)) == 1
