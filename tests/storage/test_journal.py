"""Writes that leave their journal sync to the next synced write, against a real SecantusDB."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from pymongo import AsyncMongoClient, UpdateOne

from whatsease.storage.journal import unsynced
from whatsease.storage.launcher import EmbeddedDatabase


async def test_unsynced_keeps_the_write_concern_but_the_sync() -> None:
    # No server is contacted: write concerns are client-side options.
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9/?journal=true&w=1&wtimeoutMS=500", connect=False)
    try:
        synced = client.t.c
        assert synced.write_concern.document == {"w": 1, "wtimeout": 500, "j": True}
        assert unsynced(synced).write_concern.document == {"w": 1, "wtimeout": 500}
        plain: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            "mongodb://127.0.0.1:9/", connect=False)
        try:
            # A database that never syncs per write (a replica set's defaults): unchanged.
            collection = plain.t.c
            assert unsynced(collection) is collection
        finally:
            await plain.close()
    finally:
        await client.close()


async def test_an_unsynced_write_followed_by_a_synced_one_survives_kill_9(
        tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log")
    uri = database.start()
    assert "journal=true" in uri
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=20000)
    try:
        summaries, messages = client.t.summaries, client.t.messages
        # What the message path does: a chat summary without a sync, then
        # the next message's insert, acknowledged once the journal is synced.
        await unsynced(summaries).bulk_write(
            [UpdateOne({"_id": f"c{i}"}, {"$inc": {"n": 1}}, upsert=True) for i in range(3)])
        await unsynced(client.t.activity).insert_many([{"entry": i} for i in range(3)])
        await messages.insert_one({"_id": "m1"})
        assert database.process is not None
        os.kill(database.process.pid, signal.SIGKILL)
        database.process.wait(timeout=30)
    finally:
        await client.close()
    database.stop()
    again = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db2.log")
    client = AsyncMongoClient(again.start(), serverSelectionTimeoutMS=20000)
    try:
        assert await client.t.messages.find_one({"_id": "m1"}) == {"_id": "m1"}
        # The insert's sync made the writes before it durable too.
        assert await client.t.summaries.count_documents({"n": 1}) == 3
        assert await client.t.activity.count_documents({}) == 3
    finally:
        await client.close()
        again.stop()
