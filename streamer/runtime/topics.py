"""Checks the topics a topology needs and creates its internal ones, before any task starts.

Everything that would make a worker misbehave later (a missing input, a changelog
with the wrong partition count, inputs of a sub-topology that are not co-partitioned)
is found here and reported with what to change.
"""

from __future__ import annotations

import asyncio
import logging
import re

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamer.config import StreamerConfig
from streamer.errors import MissingTopicError, TopicAuthorizationError, TopicMismatchError
from streamer.topology.topology import RepartitionTopicSpec, Topology, internal_topic_name

log = logging.getLogger("streamer.topics")

_TOPIC_ALREADY_EXISTS = 36
_TOPIC_AUTHORIZATION_FAILED = 29


class TopicManager:
    """Resolves a topology's topics against the cluster; ``prepare`` returns partition counts."""

    def __init__(self, admin: AIOKafkaAdminClient, topology: Topology, config: StreamerConfig) -> None:
        self.admin = admin
        self.topology = topology
        self.config = config
        self.app = config.application_id

    async def partition_counts(self, topics: list[str] | None = None) -> dict[str, int]:
        """Partition count of each existing topic among ``topics`` (all topics if None)."""
        described = await self.admin.describe_topics(topics)
        return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0 and t["partitions"]}

    async def prepare(self) -> dict[str, int]:
        """Check inputs and outputs, create internal topics; returns partitions per topic."""
        counts = await self.partition_counts()
        await self._resolve_patterns(counts)
        await self._ensure_external(counts)
        await self._ensure_internal(counts)
        return counts

    async def _resolve_patterns(self, counts: dict[str, int]) -> None:
        for sub in self.topology.subtopologies:
            for index, source in enumerate(sub.sources):
                if source.pattern:
                    matched = sorted(t for t in counts if re.fullmatch(source.pattern, t))
                    if not matched:
                        raise MissingTopicError(
                            f"no topic matches the pattern {source.pattern!r} of source {source.node}; "
                            "create one first (topics created later are not picked up until restart)"
                        )
                    sub.sources[index] = type(source)(source.node, tuple(matched), None, False)

    async def _ensure_external(self, counts: dict[str, int]) -> None:
        needed: list[str] = []
        for sub in self.topology.subtopologies:
            needed += [t for s in sub.sources if not s.internal for t in s.topics]
            needed += [s.topic for s in sub.sinks if not s.internal and s.topic is not None]
        needed += [spec.topic for spec in self.topology.global_stores]
        handlers = (self.config.processing_error_handler, self.config.deserialization_error_handler,
                    self.config.production_error_handler)
        if "dead_letter" in handlers:
            needed.append(self.config.effective_dead_letter_topic)
        missing = sorted({t for t in needed if t not in counts})
        if not missing:
            return
        await self._raise_if_unauthorized(missing)
        if not self.config.auto_create_topics:
            raise MissingTopicError(
                f"topic(s) {', '.join(missing)} do not exist at {self.config.bootstrap_servers}; create them "
                "(e.g. kafka-topics.sh --create) or run with --auto-create-topics"
            )
        partitions = self.config.auto_create_partitions
        await self._create({t: (partitions, {}) for t in missing})
        counts.update({t: partitions for t in missing})

    async def _raise_if_unauthorized(self, missing: list[str]) -> None:
        """A listing of all topics leaves out those the principal may not describe: say so, not "do not exist"."""
        described = await self.admin.describe_topics(missing)
        hidden = sorted(t["topic"] for t in described if t["error_code"] == _TOPIC_AUTHORIZATION_FAILED)
        if hidden:
            raise TopicAuthorizationError(
                f"not authorized to describe topic(s) {', '.join(hidden)} at {self.config.bootstrap_servers}: grant "
                "the application's principal DESCRIBE and READ on the topics it reads, DESCRIBE and WRITE on "
                "those it writes (kafka-acls.sh --add ...; see docs/configuration.md)"
            )

    def _input_partitions(self, sub_id: int, counts: dict[str, int]) -> int:
        """Tasks of a sub-topology = partitions of its inputs, which must all agree.

        Internal topics that follow their reader (``RepartitionTopicSpec.follows_reader``)
        are left out: they take this count, and ``_ensure_internal`` checks existing ones.
        """
        sub = self.topology.subtopologies[sub_id]
        following = {internal_topic_name(self.app, s.suffix) for s in self.topology.repartition_topics
                     if s.follows_reader and s.reader == sub_id}
        sizes: dict[str, int] = {}
        for source in sub.sources:
            for topic in source.resolved_topics(self.app):
                if topic in following:
                    continue
                if topic not in counts:
                    counts[topic] = self._repartition_partitions(topic, counts)
                sizes[topic] = counts[topic]
        if len(set(sizes.values())) > 1:
            raise TopicMismatchError(self._co_partitioning_problem(sub_id, sizes))
        if not sizes:
            raise MissingTopicError(f"sub-topology {sub_id} reads only internal topics that take its partition "
                                    f"count ({', '.join(sorted(following))}); it needs an input of its own")
        return next(iter(sizes.values()))

    def _co_partitioning_problem(self, sub_id: int, sizes: dict[str, int]) -> str:
        """What is wrong, and how to fix it: a task reads one partition number of each of its inputs."""
        sub = self.topology.subtopologies[sub_id]
        internal = {t for s in sub.sources if s.internal for t in s.resolved_topics(self.app)}
        listing = ", ".join(f"{t} has {n} partition{'' if n == 1 else 's'}" for t, n in sorted(sizes.items()))
        joins = [node.name for node in sub.nodes if "join" in node.op]
        what = f"joins ({', '.join(joins)})" if joins else "merges or shares state between"
        most = max(sizes.values())
        fewer = sorted(t for t, n in sizes.items() if n < most and t not in internal)
        fixes = []
        if fewer:
            fixes.append(f"give the inputs one partition count (kafka-topics.sh --alter --topic {fewer[0]} "
                         f"--partitions {most}; adding partitions moves keys, so reprocess from the start)")
        if internal:
            fixes.append(f"or drop the fixed partition count of {', '.join(sorted(internal))} "
                         "(repartition(partitions=...)) so it takes the other inputs' count")
        else:
            fixes.append("or send the stream side through stream.repartition(partitions=N) before the join "
                         "(a table side: builder.stream(topic).repartition(partitions=N).to_table(name))")
        return (f"sub-topology {sub_id} {what} topics with different partition counts: {listing}. "
                "They must be co-partitioned (each key in the same partition number of every input): "
                + "; ".join(fixes))

    def _internal_partitions(self, spec: RepartitionTopicSpec, counts: dict[str, int]) -> int:
        """An internal topic's partitions: as given, else as its writer's (or its reader's) inputs."""
        return spec.partitions or self._input_partitions(spec.reader if spec.follows_reader else spec.writer, counts)

    def _repartition_partitions(self, topic: str, counts: dict[str, int]) -> int:
        for spec in self.topology.repartition_topics:
            if internal_topic_name(self.app, spec.suffix) == topic:
                return self._internal_partitions(spec, counts)
        raise MissingTopicError(f"internal topic {topic} has no writer in the topology")

    async def _ensure_internal(self, counts: dict[str, int]) -> None:
        wanted: dict[str, tuple[int, dict[str, str]]] = {}
        for spec in self.topology.repartition_topics:
            name = internal_topic_name(self.app, spec.suffix)
            expected = self._internal_partitions(spec, counts)
            wanted[name] = (expected, {})
        for sub in self.topology.subtopologies:
            tasks = self._input_partitions(sub.id, counts)
            for store in sub.stores:
                if store.logged:
                    wanted[store.changelog_topic(self.app)] = (tasks, store.changelog_config())
        existing = await self.partition_counts(list(wanted)) if wanted else {}
        for name, (partitions, _) in wanted.items():
            if name in existing and existing[name] != partitions:
                raise TopicMismatchError(
                    f"internal topic {name} has {existing[name]} partitions but the topology needs "
                    f"{partitions}; delete it (and the application's state) or restore the old input partition count"
                )
        await self._check_changelogs({n: cfg for n, (_, cfg) in wanted.items() if cfg and n in existing})
        await self._create({n: w for n, w in wanted.items() if n not in existing})
        counts.update({n: p for n, (p, _) in wanted.items()})

    async def _check_changelogs(self, wanted: dict[str, dict[str, str]]) -> None:
        """Existing changelogs must keep what restore needs: compacted, and windows long enough."""
        if not wanted:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.broker_timeout_s
        pending = dict(wanted)
        while pending:
            resources = [ConfigResource(ConfigResourceType.TOPIC, n, {"cleanup.policy": None, "retention.ms": None})
                         for n in pending]
            for response in await self.admin.describe_configs(resources):
                for _, _, _, name, entries in response.resources:
                    actual = {e[0]: e[1] for e in entries}
                    if not actual.get("cleanup.policy") and loop.time() < deadline:
                        continue  # just created by another worker: this broker does not know its configs yet
                    self._raise_if_unfit(name, pending.pop(name), actual)
            if pending:
                await asyncio.sleep(0.1)  # bounded by the deadline above

    @staticmethod
    def _raise_if_unfit(name: str, wanted: dict[str, str], actual: dict[str, str]) -> None:
        problem = _changelog_problem(wanted, actual)
        if problem:
            settings = ",".join(f"{k}=[{v}]" if "," in v else f"{k}={v}" for k, v in wanted.items())
            raise TopicMismatchError(
                f"changelog topic {name} {problem}. Fix with: kafka-configs.sh --alter "
                f"--entity-type topics --entity-name {name} --add-config {settings}"
            )

    async def _create(self, topics: dict[str, tuple[int, dict[str, str]]]) -> None:
        if not topics:
            return
        replication = self.config.replication_factor
        new = [NewTopic(n, p, replication, topic_configs=cfg) for n, (p, cfg) in topics.items()]
        response = await self.admin.create_topics(new)
        for topic, code, *rest in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise MissingTopicError(f"could not create topic {topic}: error {code} {rest[0] if rest else ''}")
        log.info("created topics %s", ", ".join(sorted(topics)))
        await self._wait_visible(list(topics))

    async def _wait_visible(self, names: list[str], timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            counts = await self.partition_counts(names)
            if all(n in counts for n in names):
                return
            if loop.time() > deadline:
                raise MissingTopicError(f"topics {names} were created but never showed up in metadata")
            await asyncio.sleep(0.1)


def _changelog_problem(wanted: dict[str, str], actual: dict[str, str]) -> str | None:
    """What is wrong with an existing changelog's settings, or None."""
    policy = actual.get("cleanup.policy", "")
    if "compact" not in policy:
        return f"has cleanup.policy={policy!r}; it must be compacted or state is lost once old segments are deleted"
    if "retention.ms" in wanted and "delete" in policy:
        retention = int(actual.get("retention.ms") or -1)
        if 0 <= retention < int(wanted["retention.ms"]):
            return (f"keeps records for retention.ms={retention}, less than the store's retention plus a day "
                    f"({wanted['retention.ms']}): a restore would miss windows the store still needs")
    return None
