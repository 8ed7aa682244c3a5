"""Start an application over, like Kafka Streams' application reset tool.

A reset (1) moves the group's committed input offsets back to the earliest offsets (or to
the first offset at or after a time), dropping the stream time kept in their metadata,
(2) deletes the application's internal topics (repartition, changelog and foreign-key
join topics) and (3) removes this machine's state directory of the application. The next
run then computes everything from the inputs again. It refuses while the consumer group
has members, because a running worker would commit its offsets and recreate its topics
right after.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from streamer.config import StreamerConfig
from streamer.errors import BrokerUnavailableError, ResetError
from streamer.runtime.clients import connection_options
from streamer.topology.topology import Topology, internal_topic_name

T = TypeVar("T")

#: Name endings of the internal topics streamer creates after the ``<application id>-`` prefix.
INTERNAL_SUFFIXES = ("-repartition", "-changelog", "-subscription-registration-topic",
                     "-subscription-response-topic")


@dataclass
class ResetPlan:
    """What a reset changes; ``describe()`` is what ``--dry-run`` prints."""

    application_id: str
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    topics: list[str] = field(default_factory=list)
    state_dir: Path | None = None

    def describe(self) -> list[str]:
        lines = [f"reset offset of {tp.topic}-{tp.partition} for group {self.application_id} to {offset}"
                 for tp, offset in sorted(self.offsets.items())]
        lines += [f"delete internal topic {topic}" for topic in self.topics]
        if self.state_dir is not None:
            lines.append(f"remove local state directory {self.state_dir}")
        if not lines:
            lines.append(f"nothing to reset for application {self.application_id}")
        return lines


def is_internal_topic(application_id: str, topic: str) -> bool:
    """Whether ``topic`` looks like one of the application's internal topics (by prefix and ending)."""
    return topic.startswith(application_id + "-") and topic.endswith(INTERNAL_SUFFIXES)


def topology_internal_topics(topology: Topology, application_id: str) -> set[str]:
    """The internal topics a topology names: repartition and join topics, changelogs of logged stores."""
    names = {internal_topic_name(application_id, spec.suffix) for spec in topology.repartition_topics}
    names |= {store.changelog_topic(application_id) for store in topology.stores() if store.logged}
    for sub in topology.subtopologies:
        names |= {t for source in sub.sources if source.internal for t in source.resolved_topics(application_id)}
    return names


def topology_input_topics(topology: Topology, existing: set[str]) -> set[str]:
    """The topology's external inputs; pattern sources match against the topics that exist."""
    found: set[str] = set()
    for sub in topology.subtopologies:
        for source in sub.sources:
            if source.internal:
                continue
            if source.pattern:
                found |= {t for t in existing if re.fullmatch(source.pattern, t)}
            else:
                found |= set(source.topics)
    return found


def parse_datetime(text: str) -> int:
    """An ISO 8601 date-time as epoch milliseconds; without a zone it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise ResetError(f"--to-datetime {text!r} is not an ISO 8601 date-time such as 2024-05-01T12:00:00Z") \
            from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


class ApplicationReset:
    """Plans and applies a reset of one application through the admin client and a group-less consumer."""

    def __init__(self, config: StreamerConfig, topology: Topology | None = None,
                 to_timestamp_ms: int | None = None, out: Callable[[str], None] = print) -> None:
        config.require_application_id()
        self.config = config
        self.app = config.application_id
        self.topology = topology
        self.to_timestamp_ms = to_timestamp_ms
        self.out = out

    async def run(self, dry_run: bool = False) -> ResetPlan:
        """Refuse if the group has members, else plan, print each action and (unless dry) apply it."""
        admin = AIOKafkaAdminClient(client_id=f"{self.app}-reset", **connection_options(self.config))
        try:
            await asyncio.wait_for(admin.start(), self.config.broker_timeout_s)
        except (KafkaError, TimeoutError, OSError) as error:
            await admin.close()
            raise BrokerUnavailableError(
                f"no broker answered at {self.config.bootstrap_servers} within {self.config.broker_timeout_s}s: "
                f"{error!r}") from error
        try:
            await self._refuse_if_active(admin)
            plan = await self._plan(admin)
            for line in plan.describe():
                self.out(("would " if dry_run else "") + line)
            if not dry_run:
                await self._apply(admin, plan)
            return plan
        finally:
            await admin.close()

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Retry a group call on retriable errors until the broker timeout.

        On a fresh cluster the group coordinator is not available until the broker has
        created ``__consumer_offsets``; that is a wait, not a failure.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.broker_timeout_s
        delay = 0.05
        while True:
            try:
                return await call()
            except KafkaError as error:
                if not error.retriable or loop.time() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _refuse_if_active(self, admin: AIOKafkaAdminClient) -> None:
        for response in await self._retrying(lambda: admin.describe_consumer_groups([self.app])):
            for group in response.to_object()["groups"]:
                members = group["members"]
                if members:
                    clients = ", ".join(sorted({f"{m['client_id']}@{m['client_host']}" for m in members}))
                    raise ResetError(
                        f"consumer group {self.app} has {len(members)} active member(s) ({clients}); stop every "
                        f"worker of the application (SIGTERM), wait until the group is empty (or "
                        f"session_timeout_ms after a crash), then run the reset again")

    async def _plan(self, admin: AIOKafkaAdminClient) -> ResetPlan:
        existing = set(await admin.list_topics())
        internal = {t for t in existing if is_internal_topic(self.app, t)}
        if self.topology is not None:
            internal |= topology_internal_topics(self.topology, self.app) & existing
        committed = await self._retrying(lambda: admin.list_consumer_group_offsets(self.app))
        inputs = {tp.topic for tp in committed if tp.topic not in internal and tp.topic in existing}
        if self.topology is not None:
            inputs |= topology_input_topics(self.topology, existing) & existing
        state = Path(self.config.state_dir) / self.app
        partitions = [TopicPartition(t["topic"], p["partition"]) for t in await admin.describe_topics(sorted(inputs))
                      if t["error_code"] == 0 for p in t["partitions"]]
        return ResetPlan(self.app, await self._target_offsets(sorted(partitions)), sorted(internal),
                         state if state.exists() else None)

    async def _target_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        consumer = AIOKafkaConsumer(client_id=f"{self.app}-reset", enable_auto_commit=False,
                                    **connection_options(self.config))
        await consumer.start()
        try:
            if self.to_timestamp_ms is None:
                return dict(await consumer.beginning_offsets(partitions))
            found = await consumer.offsets_for_times({tp: self.to_timestamp_ms for tp in partitions})
            ends = await consumer.end_offsets(partitions)
            # No record at or after the time: start after the last one, as Kafka Streams' tool does.
            return {tp: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in partitions}
        finally:
            await consumer.stop()

    async def _apply(self, admin: AIOKafkaAdminClient, plan: ResetPlan) -> None:
        if plan.offsets:
            await self._commit_offsets(plan.offsets)
        if plan.topics:
            await admin.delete_topics(plan.topics)
            await self._wait_deleted(admin, set(plan.topics))
        if plan.state_dir is not None:
            shutil.rmtree(plan.state_dir)

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit as a member-less consumer of the group (accepted while the group is empty)."""
        consumer = AIOKafkaConsumer(group_id=self.app, client_id=f"{self.app}-reset", enable_auto_commit=False,
                                    **connection_options(self.config))
        await consumer.start()
        try:
            consumer.assign(list(offsets))
            await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
        finally:
            await consumer.stop()

    async def _wait_deleted(self, admin: AIOKafkaAdminClient, topics: set[str]) -> None:
        """Wait until the deleted topics are gone, so a worker started next creates them anew."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.broker_timeout_s
        while remaining := topics & set(await admin.list_topics()):
            if loop.time() > deadline:
                raise ResetError(f"topics {', '.join(sorted(remaining))} still exist "
                                 f"{self.config.broker_timeout_s}s after their deletion; check the broker's logs "
                                 "(delete.topic.enable) and run the reset again")
            await asyncio.sleep(0.2)
