"""Support customers' messages count in the language the bot speaks with them."""

from __future__ import annotations

from datetime import timedelta

from whatsease.analytics.scope import Scope
from whatsease.analytics.service import get_analytics
from whatsease.services import Services
from whatsease.storage.support import MESSAGES
from whatsease.support.service import get_support
from whatsease.timeutil import utcnow


async def test_a_customer_message_is_stored_and_counted_in_the_language_the_bot_speaks(
        services: Services) -> None:
    support = get_support(services)
    org = await support.orgs.create("Tienda", settings={})
    first, _, _ = await support.start_session(org, "Ana", "ana@c.test")
    second, _, _ = await support.start_session(org, "Bob", "bob@c.test")
    # Ana's bot already answered her in Spanish (what the engine remembers);
    # Bob's has not answered yet: his language is not known.
    await support.store.conversations.update(first.conversation_id,
                                             {"bot_state": {"language": "es"}})
    await support.customer_send(first.conversation_id, "hola, ¿dónde está mi pedido?")
    await support.customer_send(second.conversation_id, "hello")
    await support.wait_idle()
    db = services.store.db
    stored = await db[MESSAGES].find({"kind": "customer"}, {"_id": 0, "content": 1,
                                                            "language": 1}).to_list()
    assert sorted(stored, key=lambda m: m["content"]) == [
        {"content": "hello"}, {"content": "hola, ¿dónde está mi pedido?", "language": "es"}]
    now = utcnow()
    report = await get_analytics(services).report(Scope(org.org_id), now - timedelta(hours=1),
                                                  now + timedelta(minutes=1), "hour", "UTC")
    # A message whose language is not known counts as English.
    assert report["languages"] == [{"language": "en", "count": 1},
                                   {"language": "es", "count": 1}]
