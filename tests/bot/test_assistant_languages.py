"""The assistant's languages through a real server: Spanish over the socket, the chosen
language over REST, and the language of each turn in the bot history."""

from __future__ import annotations

from tests.bot.test_assistant import BOT, bot_reply_to, interactions, say
from tests.realtime.wsclient import connect
from tests.support import ServerThread, register


def test_spanish_over_the_socket_gets_spanish_back(server: ServerThread) -> None:
    maria = register(server.port, "maria", name="María")
    ws = connect(server, maria)
    try:
        ack = ws.call({"type": "send", "client_id": "es-1", "recipient": BOT,
                       "content": "hola, ¿cómo cambio mi nombre?"}, "ack")
        sent = ack["message"]
        reply = ws.expect("message", lambda f: f["message"]["sender"] == BOT)["message"]
        assert reply["content"] == ("Abre Ajustes, edita tu nombre visible y guarda. Tus contactos"
                                    " verán el nombre nuevo en su lista de chats.")
        # A one-word reply keeps the conversation in Spanish.
        ws.call({"type": "send", "client_id": "es-2", "recipient": BOT,
                 "content": "thanks"}, "ack")
        again = ws.expect("message", lambda f: f["message"]["sender"] == BOT
                          and f["message"]["message_id"] > reply["message_id"])["message"]
        assert again["content"] in ("¡De nada!", "Encantado de ayudar. ¿Algo más?",
                                    "Cuando quieras.")
    finally:
        ws.close()
    turns = interactions(maria, 2)
    assert [t["lang"] for t in turns] == ["es", "es"]
    assert turns[-1]["message_id"] == sent["message_id"]
    assert turns[-1]["intent"] == "change_name"


def test_hindi_is_read_and_answered_in_hindi(server: ServerThread) -> None:
    priya = register(server.port, "priya")
    reply = bot_reply_to(priya, say(priya, "मेरा नाम प्रिया है"))
    assert reply["content"] in ("आपसे मिलकर खुशी हुई, प्रिया! मैं यह याद रखूँगा।",
                                "ठीक है — मैं आपको प्रिया कहूँगा।")
    assert interactions(priya)[0]["lang"] == "hi"


def test_the_chosen_language_is_kept_server_side(server: ServerThread) -> None:
    sam = register(server.port, "sam")
    res = sam.client.get("/api/v1/bot/language")
    assert res.status == 200
    assert res.json == {"language": None, "current": None, "languages": ["en", "es", "hi"]}
    res = sam.client.request("PUT", "/api/v1/bot/language", {"language": "hi"})
    assert res.status == 200, res.body
    assert res.json["language"] == "hi"
    # An English question is answered in the chosen language.
    reply = bot_reply_to(sam, say(sam, "how do I log out of other devices?"))
    assert reply["content"].startswith("अपने एक्टिव सेशन देखने के लिए सेटिंग्स खोलें")
    # Asking in words changes the choice the settings show.
    reply = bot_reply_to(sam, say(sam, "speak English please"))
    assert reply["content"] == "Sure, I'll speak English from now on."
    assert sam.client.get("/api/v1/bot/language").json["language"] == "en"
    res = sam.client.request("PUT", "/api/v1/bot/language", {"language": None})
    assert res.json["language"] is None


def test_choosing_a_language_the_bot_lacks_is_refused(server: ServerThread) -> None:
    kim = register(server.port, "kim")
    res = kim.client.request("PUT", "/api/v1/bot/language", {"language": "fr"})
    assert res.status == 422
    assert res.json["errors"][0]["field"] == "language"
    res = kim.client.request("PUT", "/api/v1/bot/language", {"language": 3})
    assert res.status == 422
    res = kim.client.request("PUT", "/api/v1/bot/language", {"lang": "es"})
    assert res.status == 422
