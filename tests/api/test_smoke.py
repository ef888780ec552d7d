"""A first walk through the API: register, send, read back."""

from __future__ import annotations

from tests.support import ServerThread, register


def test_register_send_and_read_history(server: ServerThread) -> None:
    alice = register(server.port, "alice")
    bob = register(server.port, "bob")
    sent = alice.client.post("/api/v1/messages", {"recipient": bob.email, "content": " hi "})
    assert sent.status == 201
    message = sent.json["message"]
    assert sent.header("Location") == f"/api/v1/messages/{message['message_id']}"
    assert message["content"] == "hi"
    assert message["status"] == "Sent"
    history = bob.client.get(f"/api/v1/messages?with={alice.email}").json["messages"]
    assert [m["message_id"] for m in history] == [message["message_id"]]
    assert set(message) >= {"message_id", "sender", "recipient", "content", "timestamp",
                            "status", "is_bot_response"}
