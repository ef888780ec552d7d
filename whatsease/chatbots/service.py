"""Chatbot instances: operators' configs in, status out (the API's service).

An operator owns instances (``PUT /api/v1/chatbots``): each names a chat
provider, an LLM provider and its queue bounds; keys and tokens are sealed
(sealing.py) and never shown. `ChatbotService` validates and stores configs,
(re)builds the running instances and reports their status; running them is
`ChatbotRuntime`'s (runtime.py).
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import segno

from whatsease.chatbots.chat import GROUP_SETTING
from whatsease.chatbots.configs import InstanceSpec, parse_instances
from whatsease.chatbots.runtime import ChatbotRuntime, Instance
from whatsease.chatbots.sealing import SealBroken
from whatsease.cluster.routing import org_route
from whatsease.errors import NotFound, Unprocessable
from whatsease.services import Services
from whatsease.storage.chatbots import CHATBOT_INDEXES, COUNT_NAMES, StoredInstance
from whatsease.storage.models import User
from whatsease.support.orgs import is_org_admin
from whatsease.timeutil import isoformat, utcnow

MAX_INSTANCES_PER_OWNER = 100
# Clustering: every chatbot instance runs on one member, the owner of this key
# (an instance answers each sender in order from memory). The API and the
# instances' webhooks are replayed there; a member that gains the key loads the
# instances and resumes their queues from MongoDB, one that loses it stops.
CHATBOTS_ROUTE = org_route("chatbots")
# Senders and conversations a status lists (the busiest / most recent).
STATUS_SENDERS = 100
# Pixels per QR module in a status's link QR code (about 200 px for a short link).
QR_SCALE = 6


class ChatbotService(ChatbotRuntime):
    """Every chatbot instance of the process; one per process (``services.chatbots``)."""

    def __init__(self, services: Services, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(services, clock=clock)
        self._changing = asyncio.Lock()
        self.running = False
        self._following: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        self.running = True

    async def stop(self) -> None:
        self.running = False
        await super().stop()

    async def close(self) -> None:
        """Shut down: let a ring change under way finish, then stop."""
        if self._following is not None:
            await asyncio.gather(self._following, return_exceptions=True)
        await self.stop()

    def follow_ring(self) -> None:
        """The ring changed: start running the instances if this member now owns
        `CHATBOTS_ROUTE`, stop if it no longer does (queues stay in MongoDB)."""
        previous = self._following
        self._following = asyncio.get_running_loop().create_task(
            self._follow(previous), name="chatbots-follow-ring")

    async def _follow(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        cluster = self.services.cluster
        if cluster is None:
            return
        async with self._changing:
            mine = cluster.is_mine(CHATBOTS_ROUTE)
            if mine and not self.running:
                await self.start()
            elif not mine and self.running:
                await self.stop()

    # ---------------------------------------------------------------- configs

    async def put(self, user: User, body: Any) -> list[dict[str, str]]:
        """Create or replace the owner's instances from ``body`` (validated as a whole).

        Raises `Unprocessable` naming the entry and field; nothing is created then.
        An entry whose ``user_id`` the owner already has replaces that instance
        (same ``instance_id``, so webhook URLs stay valid; queues and totals kept).
        """
        # One change at a time: two requests creating the same user_id at once
        # would otherwise both pick a new instance id.
        async with self._changing:
            return await self._put(user, body)

    async def _put(self, user: User, body: Any) -> list[dict[str, str]]:
        owner = user.email
        existing = {s.user_id: s for s in await self.repo.owned(
            owner, limit=MAX_INSTANCES_PER_OWNER + 1)}
        if isinstance(body, list):
            body = [self._keep_secrets(entry, existing) for entry in body]
        specs = parse_instances(body, self.llm_context)
        await self._check_handoff_orgs(user, specs)
        total = len(existing) + sum(1 for s in specs if s.user_id not in existing)
        if total > MAX_INSTANCES_PER_OWNER:
            raise Unprocessable(
                f"An operator has at most {MAX_INSTANCES_PER_OWNER} instances; this would "
                f"make {total}.", errors=[{"field": "body", "message": "too many instances"}])
        now = self.clock()
        stored = [self._stored(owner, spec, existing.get(spec.user_id), now) for spec in specs]
        await self.repo.save_all(stored)
        for item in stored:
            await self._activate(item)
        self._update_depth()
        return [{"user_id": s.user_id, "instance_id": s.instance_id} for s in stored]

    async def _check_handoff_orgs(self, user: User, specs: list[InstanceSpec]) -> None:
        """Only an org's admins may hand senders to its agents; 422 naming the entry if not."""
        support = self.services.support
        errors = []
        for spec in specs:
            if spec.handoff is None:
                continue
            try:
                org = (await support.orgs.get(spec.handoff.org_id) if support is not None
                       else None)
            except NotFound:
                org = None
            if org is None or not is_org_admin(user, org.org_id):
                errors.append({"field": f"[{spec.index}].handoff_config.org_id",
                               "message": "is not an organisation you administer"})
        if errors:
            raise Unprocessable("Nothing was created. " + "; ".join(
                f"entry {e['field']}: {e['message']}" for e in errors), errors=errors)

    def _keep_secrets(self, entry: Any, existing: Mapping[str, StoredInstance]) -> Any:
        """``entry`` with the old secrets filled in where it asks to keep them and omits them."""
        if not isinstance(entry, dict) or entry.get("keep_secrets") is not True:
            return entry
        old = existing.get(entry.get("user_id"))  # type: ignore[arg-type]
        if old is None:
            return entry
        try:
            secrets = self._open_secrets(old)
        except SealBroken:
            return entry
        entry = dict(entry)
        for block, provider_name, kind in (("chat_provider_config", old.chat_provider, "chat"),
                                           ("llm_provider_config", old.llm_provider, "llm")):
            raw = entry.get(block)
            if (not isinstance(raw, dict) or raw.get("provider_name") != provider_name
                    or not isinstance(raw.get("provider_config", {}), dict)):
                continue
            config = dict(raw.get("provider_config", {}))
            for key, value in secrets.get(kind, {}).items():
                if config.get(key) in (None, ""):
                    config[key] = value
            entry[block] = {**raw, "provider_config": config}
        return entry

    def _stored(self, owner: str, spec: InstanceSpec, old: StoredInstance | None,
                now: datetime) -> StoredInstance:
        instance_id = old.instance_id if old is not None else str(uuid.uuid4())
        chat_secrets = {k: v for k, v in spec.chat_secrets.items() if v not in (None, "")}
        llm_secrets = {k: v for k, v in spec.llm_secrets.items() if v not in (None, "")}
        sealed = self.sealer.seal({"chat": chat_secrets, "llm": llm_secrets}, instance_id)
        return StoredInstance(
            instance_id=instance_id, owner=owner, user_id=spec.user_id,
            whitelist=spec.whitelist, chat_provider=spec.chat_provider,
            chat_config=spec.chat_config, allow_groups=spec.allow_groups,
            queue=spec.queue.to_dict(), llm_provider=spec.llm_provider,
            llm_config=spec.llm_config, sealed=sealed,
            created_at=old.created_at if old is not None else now, updated_at=now,
            counts=dict(old.counts) if old is not None else {},
            tokens=dict(old.tokens) if old is not None else {},
            latency=dict(old.latency) if old is not None else {},
            last_error=old.last_error if old is not None else None,
            handoff=spec.handoff.to_dict() if spec.handoff is not None else None)

    async def _activate(self, stored: StoredInstance) -> None:
        """Run ``stored``, replacing the running instance of the same id (its queues kept)."""
        fresh = self._build(stored)
        old = self.instances.get(stored.instance_id)
        if old is not None:
            fresh.stored.counts = dict(old.stored.counts)
            fresh.stored.tokens = dict(old.stored.tokens)
            fresh.stored.latency = dict(old.stored.latency)
            fresh.stored.last_error = old.stored.last_error
            await self._close(old)
            for sender, queue in old.queues.items():
                queue.limits = fresh.limits
                fresh.queues[sender] = queue
        self.instances[stored.instance_id] = fresh
        for sender, queue in fresh.queues.items():
            if queue.next_pending() is not None:
                self._wake(fresh, sender)

    def owned(self, owner: str, instance_id: str) -> Instance:
        """The owner's running instance; `NotFound` when there is none or it is someone else's."""
        instance = self.instances.get(instance_id)
        if instance is None or instance.stored.owner != owner:
            raise NotFound("No such chatbot instance.")
        return instance

    async def list(self, owner: str) -> list[dict[str, Any]]:
        stored = await self.repo.owned(owner, limit=MAX_INSTANCES_PER_OWNER)
        return [self.describe(s) for s in stored]

    def describe(self, stored: StoredInstance) -> dict[str, Any]:
        """An instance's config as the API shows it: secrets only named, never shown."""
        instance = self.instances.get(stored.instance_id)
        try:
            secrets = self._open_secrets(stored)
        except SealBroken:
            secrets = {"chat": {}, "llm": {}}
        return {
            "instance_id": stored.instance_id, "user_id": stored.user_id,
            "respond_to_whitelist": list(stored.whitelist),
            "chat_provider_config": {
                "provider_name": stored.chat_provider,
                "provider_config": {**stored.chat_config, GROUP_SETTING: stored.allow_groups}},
            "queue_config": dict(stored.queue),
            "llm_provider_config": {"provider_name": stored.llm_provider,
                                    "provider_config": dict(stored.llm_config)},
            "secrets_set": sorted([f"chat_provider_config.provider_config.{k}"
                                   for k in secrets.get("chat", {})]
                                  + [f"llm_provider_config.provider_config.{k}"
                                     for k in secrets.get("llm", {})]),
            "handoff_config": stored.handoff,
            "state": instance.state if instance is not None else "stopped",
            "webhook_path": webhook_path(stored.chat_provider, stored.instance_id),
            "created_at": isoformat(stored.created_at),
            "updated_at": isoformat(stored.updated_at),
        }

    async def delete(self, owner: str, instance_id: str) -> None:
        """Stop and forget the owner's instance, its queues and its totals."""
        async with self._changing:
            await self._delete(owner, instance_id)

    async def _delete(self, owner: str, instance_id: str) -> None:
        instance = self.owned(owner, instance_id)
        self.instances.pop(instance_id, None)
        await self._close(instance)
        await self.repo.delete(instance_id)
        self._update_depth()

    async def status(self, owner: str, instance_id: str) -> dict[str, Any]:
        instance = self.owned(owner, instance_id)
        stored = instance.stored
        queues = sorted(instance.queues.items(), key=lambda kv: (-kv[1].pending,
                                                                 -len(kv[1].entries)))
        conversations = await self.repo.conversations_of(instance_id, limit=STATUS_SENDERS)
        calls = int(stored.latency.get("calls", 0))
        total = float(stored.latency.get("total_seconds", 0.0))
        return {
            "instance_id": instance_id, "user_id": stored.user_id, "state": instance.state,
            "problem": instance.problem or None,
            "chat_provider": {"provider_name": stored.chat_provider,
                              "health": instance.chat_health,
                              "link": self._link(instance)},
            "llm_provider": {"provider_name": stored.llm_provider,
                             "health": instance.llm_health},
            "queue_depth": sum(q.pending for q in instance.queues.values()),
            "queues": [{"sender": sender, "pending": q.pending, "entries": len(q.entries),
                        "characters": q.characters} for sender, q in queues[:STATUS_SENDERS]],
            "counts": {name: int(stored.counts.get(name, 0)) for name in COUNT_NAMES},
            "tokens": {"prompt": int(stored.tokens.get("prompt", 0)),
                       "completion": int(stored.tokens.get("completion", 0))},
            "latency": {"calls": calls, "total_seconds": round(total, 4),
                        "average_seconds": round(total / calls, 4) if calls else None,
                        "last_seconds": stored.latency.get("last_seconds")},
            "conversations": [{
                "sender": c["sender"], "calls": int(c.get("calls", 0)),
                "prompt_tokens": int(c.get("prompt_tokens", 0)),
                "completion_tokens": int(c.get("completion_tokens", 0)),
                "latency_seconds": round(float(c.get("latency_secs", 0.0)), 4),
                "last_at": isoformat(c["last_at"])} for c in conversations],
            "last_error": stored.last_error,
            "webhook_path": webhook_path(stored.chat_provider, instance_id),
        }

    def _link(self, instance: Instance) -> dict[str, Any] | None:
        """How a person starts a chat with the bot, for providers that have a link (wa.me)."""
        make = getattr(instance.chat, "wa_link", None)
        if not callable(make):
            return None
        try:
            url = str(make())
        except ValueError:
            return None      # the provider has no number to link to
        svg = io.BytesIO()
        segno.make(url, error="m").save(svg, kind="svg", scale=QR_SCALE, xmldecl=False,
                                        svgns=True, title="Chat link")
        return {"url": url, "qr_svg": svg.getvalue().decode()}


def webhook_path(provider: str, instance_id: str) -> str:
    """Where an instance's platform posts its webhooks."""
    return f"/channels/{provider}/webhook/{instance_id}"


async def setup(services: Services) -> None:
    await services.store.ensure_indexes(extra=CHATBOT_INDEXES)
    service = ChatbotService(services)
    services.chatbots = service
    cluster = services.cluster
    if cluster is None or cluster.is_mine(CHATBOTS_ROUTE):
        await service.start()
    if cluster is not None:
        cluster.on_change(lambda ring, why: service.follow_ring())


async def shutdown(services: Services) -> None:
    service = services.chatbots
    if service is not None:
        await service.close()


def get_chatbots(services: Services) -> ChatbotService:
    """The process's chatbot service; `RuntimeError` if its module was not set up."""
    if services.chatbots is None:
        raise RuntimeError("the chatbot service is not set up (whatsease.chatbots.service is "
                           "missing from SERVICE_MODULES)")
    return services.chatbots
