"""An unsure chatbot instance hands its sender to an organisation's agent through support."""

from __future__ import annotations

import time

from tests.chatbots.helpers import create, entry, put_chatbots, replies_to, wait_replies, webhook
from tests.customer_support.http import console_socket, make_team, platform_admin
from tests.fakes.platforms import FakeLoopbackPeer
from tests.support import ServerThread, wait_for
from whatsease.chatbots.handoff import HANDOFF_TEXT


def test_low_confidence_hands_the_sender_to_an_agent(server: ServerThread,
                                                     peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    team = make_team(server, root, agents=1, routing="bot")
    agent = team.agents[0]
    console = console_socket(server, agent)
    try:
        # The admin of the org is the operator: only an org's admins may hand to it.
        handoff = {"org_id": team.org_id, "auto_handoff_threshold": 0.5,
                   "low_confidence_turns": 2}
        refused = put_chatbots(team.admin, [entry(peer, "unsure", handoff_config={
            **handoff, "org_id": "no-such-org"})])
        assert refused.status == 422
        assert refused.json["errors"][0]["field"] == "[0].handoff_config.org_id"
        instance = create(team.admin, peer, "unsure", handoff_config=handoff,
                          llm_config={"confidence": 0.2})

        assert webhook(server, instance, [("mia", "where is my parcel")]).status == 200
        assert wait_replies(peer, "mia", 1) == ["You said: where is my parcel"]
        assert webhook(server, instance, [("mia", "it was due monday")]).status == 200
        # The second unsure answer in a row: handed to a person instead.
        assert wait_replies(peer, "mia", 2)[1] == HANDOFF_TEXT
        seen = console.expect("message", lambda f: f["message"]["sender"] == "lb:mia"
                              and f["message"]["content"] == "it was due monday")
        conversation_id = seen["message"]["conversation_id"]

        def assigned() -> bool:
            res = agent.client.get(f"/api/v1/support/conversations/{conversation_id}")
            return res.status == 200 and res.json["conversation"]["agent"] == agent.email
        wait_for(assigned, what="the conversation assigned to the agent")

        # The agent's reply reaches the sender through the instance's chat provider.
        res = agent.client.post(f"/api/v1/support/conversations/{conversation_id}/messages",
                                {"content": "Hi Mia, let me check.", "client_id": "a1"})
        assert res.status == 201, res.body
        peer.wait_for(lambda r: isinstance(r.body, dict) and r.body.get("to") == "mia"
                      and r.body.get("text") == "Hi Mia, let me check.")
        # From now on the sender's messages go to the agent, not the model.
        answered = len([t for t in replies_to(peer, "mia") if t.startswith("You said")])
        assert webhook(server, instance, [("mia", "thanks!")]).status == 200
        console.expect("message", lambda f: f["message"]["content"] == "thanks!")
        time.sleep(0.3)  # a bot answer would have been sent by now
        assert len([t for t in replies_to(peer, "mia") if t.startswith("You said")]) == answered
        state = team.admin.client.get(f"/api/v1/chatbots/{instance}/status").json
        assert state["counts"]["handoffs"] == 1

        # Another sender the model is sure about stays with the bot.
        put_chatbots(team.admin, [entry(peer, "unsure", handoff_config=handoff,
                                        llm_config={"confidence": 0.9})])
        for n in range(3):
            assert webhook(server, instance, [("noa", f"question {n}")]).status == 200
        assert wait_replies(peer, "noa", 3) == [f"You said: question {n}" for n in range(3)]
    finally:
        console.close()


def test_asking_for_a_person_hands_over_at_once(server: ServerThread,
                                                peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    team = make_team(server, root, agents=1, routing="bot")
    console = console_socket(server, team.agents[0])
    try:
        # The default support catalogue knows "talk to a person" (action = "handoff").
        instance = create(team.admin, peer, "catalogue", llm="catalogue", handoff_config={
            "org_id": team.org_id, "auto_handoff_threshold": 0.01,
            "low_confidence_turns": 20})
        assert webhook(server, instance, [("quinn", "talk to a person")]).status == 200
        assert wait_replies(peer, "quinn", 1) == [HANDOFF_TEXT]
        console.expect("message", lambda f: f["message"]["sender"] == "lb:quinn"
                       and f["message"]["content"] == "talk to a person")
    finally:
        console.close()
