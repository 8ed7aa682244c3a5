"""Run the chaos test: kill -9 workers of tests.chaos.app while input flows, then verify.

    .venv/bin/python -m tests.chaos.run [--guarantee exactly_once|at_least_once|both]
        [--records 100000] [--kills 10] [--workers 3] [--keys 20] [--bootstrap HOST:PORT]

Without --bootstrap a dev broker is started for the run and stopped after it. Each run
gets its own application id and topics, so runs never see each other's data. The exit
code is 0 only if every run passed its verifier and no worker died on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from streamer.devbroker import DevBroker
from tests.chaos.app import MAX_TASK_IDLE_MS
from tests.chaos.faults import KillEvent, kill_leader_broker, pause_worker
from tests.chaos.generator import InputWriter, generate_input, generate_table
from tests.chaos.verifier import (
    GUARANTEES,
    KINDS,
    ChaosTopics,
    Report,
    end_offsets,
    internal_topics,
    open_transactions,
    topic_partitions,
    verify,
)
from tests.workers import WorkerProcess, assigned_tasks

APP = "tests.chaos.app:topology"
#: The app's sub-topologies: one task per partition of each.
SUBTOPOLOGIES = 2
#: The sub-topology that writes the echo topic; echo partition p is written by task ``0_p``.
ECHO_SUBTOPOLOGY = 0
#: Longest wait for a transaction holding echo records before a "processing" kill under exactly-once.
OPEN_TRANSACTION_TIMEOUT_S = 30.0
#: Log lines worth counting in the workers' logs after a run (what the runtime went through).
LOG_EVENTS = {
    "tracebacks": re.compile(r"^Traceback", re.MULTILINE),
    "errors": re.compile(r" ERROR "),
    "failed transactions": re.compile(r"(?:transaction|commit) of task \S+ failed"),
    "fenced": re.compile(r"fenced"),
    "restores": re.compile(r"restored", re.IGNORECASE),
}


@dataclass
class ChaosOptions:
    """What one run does; the defaults are the long form."""

    records: int = 100_000
    kills: int = 10
    workers: int = 3
    keys: int = 20
    seed: int = 1
    partitions: int = 6
    #: Highest input rate (records/s); the runner lowers it so that input flows until the last kill.
    rate: float = 2_000.0
    #: Share of kills that kill every worker at once (a power cut rather than one lost process).
    kill_all_share: float = 0.1
    #: Share of kills that hit the group while it still recovers from the previous one.
    early_kill_share: float = 0.2
    #: Records the group must commit after settling before a "processing" kill.
    progress_before_kill: int = 300
    #: First guess of the time from one kill to the next (the session timeout is 6 s), for pacing.
    cycle_estimate_s: float = 8.0
    #: Seconds of input left to flow after the last kill.
    tail_s: float = 5.0
    #: Share of restarts that start from an empty state directory (restore from the changelogs).
    wipe_share: float = 0.3
    #: Longest pause between a kill and the restart.
    max_restart_delay_s: float = 2.0
    drain_timeout_s: float = 300.0
    #: After the group consumed everything, how long the topics must not grow to count as drained.
    quiet_s: float = 2.0
    commit_interval_ms: int = 200
    keep_topics: bool = False
    quiet: bool = False
    log_dir: Path | None = None
    #: Zombie faults: a worker stopped (SIGSTOP) until the group gave its tasks to the others, then
    #: continued (SIGCONT); under exactly-once it must be fenced and rejoin (tests/chaos/faults.py).
    pauses: int = 0
    #: Broker faults: SIGKILL the node leading most input and echo partitions, restart it once the
    #: group went on without it; needs a multi-node dev broker (``Chaos(..., broker=...)``).
    broker_kills: int = 0
    #: Replication factor of the run's topics and of the app's internal topics.
    replication: int = 1


@dataclass
class ChaosResult:
    """A run: its verifier report plus what happened to the workers on the way."""

    guarantee: str
    options: ChaosOptions
    application_id: str
    report: Report
    kills: list[KillEvent]
    duration_s: float
    generate_s: float
    drain_s: float
    unexpected_exits: list[str]
    bad_shutdowns: list[str]
    log_events: dict[str, int]
    log_dir: Path

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.unexpected_exits and not self.bad_shutdowns

    def format(self) -> str:
        kills = [kill for kill in self.kills if kill.kind == "kill"]
        others = [kill for kill in self.kills if kill.kind != "kill"]
        wiped = sum(kill.wiped for kill in kills)
        early = sum(kill.when == "rebalancing" for kill in kills)
        everyone = sum(kill.everyone for kill in kills)
        extra = "".join(f", {sum(k.kind == kind for k in others)} {name}" for kind, name in
                        (("pause", "paused workers (zombies)"), ("broker", "broker kills"))
                        if any(k.kind == kind for k in others))
        lines = [
            (f"== {self.guarantee}: {self.options.records} records, {len(kills)} kills "
             f"({everyone} of all workers at once, {early} during a rebalance or restore, {wiped} state dirs wiped)"
             f"{extra}, {self.options.workers} workers, "
             f"{self.duration_s:.1f}s (input {self.generate_s:.1f}s, drain {self.drain_s:.1f}s)"),
            "  worker logs: " + str(self.log_dir),
            "  in the logs: " + ", ".join(f"{name} {count}" for name, count in self.log_events.items()),
        ]
        lines += [f"  {kill.kind} at {kill.at_s:.1f}s: {kill.detail}" for kill in others]
        lines += [f"  worker died on its own: {line}" for line in self.unexpected_exits]
        lines += [f"  unclean shutdown: {line}" for line in self.bad_shutdowns]
        lines.append(self.report.format())
        lines.append(f"  RUN: {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)


class Chaos:
    """One run against one broker: topics, workers, input, kills, drain, verification."""

    def __init__(self, bootstrap: str, guarantee: str, options: ChaosOptions, broker: DevBroker | None = None) -> None:
        if guarantee not in GUARANTEES:
            raise ValueError(f"guarantee must be one of {GUARANTEES}, not {guarantee!r}")
        if options.broker_kills and (broker is None or broker.nodes < 2):
            raise ValueError("broker kills need a dev broker of several nodes (Chaos(..., broker=DevBroker(nodes=3)))")
        self.bootstrap = bootstrap
        self.broker = broker
        #: A worker stopped with SIGSTOP right now: the group's assignment goes on without it.
        self.paused: WorkerProcess | None = None
        #: Broker nodes being restarted after a broker kill (awaited before the next one and the verifier).
        self.restarts: list[asyncio.Task[None]] = []
        self.guarantee = guarantee
        self.options = options
        short = {"exactly_once": "eos", "exactly_once_v2": "eos2"}.get(guarantee, "alos")
        self.application_id = f"chaos-{short}-{uuid.uuid4().hex[:8]}"
        self.topics = ChaosTopics(*(f"{self.application_id}.{name}" for name in
                                    ("input", "echo", "agg-direct", "agg-repart", "windowed", "table",
                                     "enriched")))
        self.dir = Path(options.log_dir or tempfile.mkdtemp(prefix="streamer-chaos-")) / self.application_id
        # Which worker dies, when and how follows from the seed: a failing run can be replayed.
        self.rng = random.Random(f"chaos-{options.seed}-{guarantee}")
        self.workers: list[WorkerProcess] = []
        self.retired: list[WorkerProcess] = []
        self.kills: list[KillEvent] = []
        self.unexpected_exits: list[str] = []
        self._killed: set[str] = set()
        self.started = time.monotonic()
        self._restarts = 0
        self.admin: AIOKafkaAdminClient | None = None
        self._newest: WorkerProcess | None = None
        #: Read the echo topic's last stable offsets and high watermarks while the kills go on.
        self._committed_reader, self._uncommitted_reader = (
            AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             isolation_level=level, client_id="chaos-runner")
            for level in ("read_committed", "read_uncommitted"))
        self._echo_partitions: list[TopicPartition] = []

    def say(self, text: str) -> None:
        if not self.options.quiet:
            print(f"[{self.guarantee} {time.monotonic() - self.started:7.1f}s] {text}", flush=True)

    async def run(self) -> ChaosResult:
        options = self.options
        records = generate_input(options.seed, options.records, options.keys)
        table = generate_table(options.seed, records, options.keys)
        base_timestamp = int(time.time() * 1000)
        await self._create_topics()
        self.say(f"application {self.application_id}, topics {self.topics.input} ... ({options.partitions} "
                 f"partitions), logs in {self.dir}")
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="chaos-runner")
        await self.admin.start()
        self._echo_partitions = await topic_partitions(self.bootstrap, [self.topics.echo])
        await asyncio.gather(self._committed_reader.start(), self._uncommitted_reader.start())
        try:
            for index in range(options.workers):
                self.workers.append(self._worker(f"w{index}", self.dir / f"state-w{index}").start())
            await asyncio.gather(*(w.wait_for_log("assigned tasks", timeout=90) for w in self.workers))
            await _wait_until(self._group_settled, timeout=90, what="the workers to share all tasks")
            self.say(f"{options.workers} workers joined; writing {options.records} records "
                     f"(at most {options.rate:.0f}/s) and {len(table)} table rows")

            writer = InputWriter(self.bootstrap, self.topics.input, records, options.partitions,
                                 rate=options.rate, base_timestamp_ms=base_timestamp,
                                 table_topic=self.topics.table, table=table)
            input_started = time.monotonic()
            writing = asyncio.create_task(writer.run(), name="chaos-generator")
            supervising = asyncio.create_task(self._supervise(), name="chaos-supervisor")
            try:
                await self._kill_while_writing(writer, writing)
                await writing
                generate_s = time.monotonic() - input_started
                self.say(f"input written in {generate_s:.1f}s; draining")
                drain_started = time.monotonic()
                await self._drain()
                drain_s = time.monotonic() - drain_started
                await asyncio.gather(*self.restarts)  # every killed broker node is back before the checks
            finally:
                supervising.cancel()
                writing.cancel()
                await asyncio.gather(supervising, writing, return_exceptions=True)
            self.say(f"drained in {drain_s:.1f}s; stopping workers")
            # While the workers still run, as a downstream reader meets it: the killed workers'
            # transactions must have been aborted by the tasks' next owners, not by the clean stop.
            at_drain = await open_transactions(self.bootstrap, self.application_id, self.topics, "txn-at-drain")
            bad_shutdowns = await self._stop_workers()
            report = await verify(self.bootstrap, self.application_id, self.topics, self.guarantee,
                                  seed=options.seed, records=options.records, keys=options.keys,
                                  base_timestamp_ms=base_timestamp)
            report.checks.insert(report.checks.index(report.check("transactions")), at_drain)
        finally:
            for worker in self.workers:
                worker.kill()
            await asyncio.gather(self._committed_reader.stop(), self._uncommitted_reader.stop())
            await self.admin.close()
            if not options.keep_topics:
                await self._delete_topics()
        for worker in self.workers + self.retired:
            shutil.rmtree(worker.state_dir, ignore_errors=True)
        return ChaosResult(self.guarantee, options, self.application_id, report, self.kills,
                           time.monotonic() - self.started, generate_s, drain_s, self.unexpected_exits,
                           bad_shutdowns, self._log_events(), self.dir)

    def _group_settled(self) -> bool:
        """Every worker holds tasks and no task is held twice (by the workers' last assignment logs).

        A paused worker does not count: the group has to go on without it.
        """
        held = [assigned_tasks(w.log()) for w in self.workers if w is not self.paused]
        every = [task for tasks in held for task in tasks]
        return all(held) and len(every) == len(set(every)) == SUBTOPOLOGIES * self.options.partitions

    def _worker(self, name: str, state_dir: Path) -> WorkerProcess:
        state_dir.mkdir(parents=True, exist_ok=True)
        worker = WorkerProcess(APP, self.bootstrap, self.application_id, guarantee=self.guarantee,
                               state_dir=str(state_dir), app_settings=self.topics.app_settings(), name=name,
                               extra_args=["--commit-interval-ms", str(self.options.commit_interval_ms),
                                           "--set", f"max_task_idle_ms={MAX_TASK_IDLE_MS}",
                                           "--replication-factor", str(self.options.replication)])
        # Keep the logs of a run together (WorkerProcess would scatter them over /tmp).
        worker.log_path.unlink(missing_ok=True)
        worker.log_path = self.dir / f"{name}.log"
        return worker

    async def _create_topics(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="chaos-admin")
        await admin.start()
        try:
            names = [*self.topics.sources, *self.topics.outputs]
            await admin.create_topics([NewTopic(name, self.options.partitions, self.options.replication)
                                       for name in names])
            deadline = time.monotonic() + 30
            while True:
                described = await admin.describe_topics(names)
                if all(t["error_code"] == 0 and len(t["partitions"]) == self.options.partitions
                       and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"topics {names} have no leaders after 30s: {described}")
                await asyncio.sleep(0.1)
        finally:
            await admin.close()

    async def _delete_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="chaos-admin")
        await admin.start()
        try:
            names = [*self.topics.sources, *self.topics.outputs, *await internal_topics(admin, self.application_id)]
            await admin.delete_topics(names)
        except (KafkaError, OSError) as error:  # cleanup only: a leftover topic hurts nobody
            self.say(f"could not delete the run's topics: {error!r}")
        finally:
            await admin.close()

    # -- chaos ---------------------------------------------------------------------------

    async def _kill_while_writing(self, writer: InputWriter, writing: asyncio.Task[None]) -> None:
        """Kill ``kills`` times (and pause or kill brokers, if asked) while the input flows.

        Most kills wait until the group has settled again and is committing progress, so
        they hit workers in the middle of processing (open transactions, unflushed output);
        the others (``early_kill_share``) hit the group while it is still recovering from
        the previous kill: during the rebalance or while the new worker restores. Pauses and
        broker kills always come mid-processing (tests/chaos/faults.py). The input is slowed
        down after each fault so that it still flows when the last one comes.
        """
        first_kill_at = 0.0
        plan = self._fault_plan()
        self._pace(writer, 0, self.options.cycle_estimate_s)
        for number, kind in enumerate(plan, start=1):
            early = (kind == "kill" and number > 1 and plan[number - 2] == "kill"
                     and self.rng.random() < self.options.early_kill_share)
            if early:
                await _wait_until(lambda: "assigned tasks" in self._newest_log() or writing.done(), timeout=120,
                                  what="the restarted worker to join the group")
                await asyncio.sleep(self.rng.uniform(0.0, 1.0))  # somewhere in the rebalance or restore
            owners: list[WorkerProcess] = []
            if not early:
                await self._wait_until_processing(writing)
                if self.guarantee.startswith("exactly_once") and kind != "broker":
                    owners = await self._owners_of_open_transactions(writing)
            if writing.done():
                writing.result()  # raises if the generator failed
                self.say(f"the input ended before fault {number}: use more --records or a lower --rate")
            if kind == "pause":
                self.kills.append(await pause_worker(self, writer.acked, writer.rate, owners))
            elif kind == "broker":
                self.kills.append(await kill_leader_broker(self, writer.acked, writer.rate))
            else:
                await self._kill(writer.acked, "rebalancing" if early else "processing", writer.rate, owners)
            if number == 1:
                first_kill_at = time.monotonic()
                self._pace(writer, number, self.options.cycle_estimate_s)
            else:
                self._pace(writer, number, (time.monotonic() - first_kill_at) / (number - 1))

    def _fault_plan(self) -> list[str]:
        """The order of the run's faults: kills, pauses and broker kills mixed, following the seed."""
        options = self.options
        plan = ["kill"] * options.kills + ["pause"] * options.pauses + ["broker"] * options.broker_kills
        if options.pauses or options.broker_kills:  # a kill-only run keeps the kill plan its seed always gave
            random.Random(f"chaos-plan-{options.seed}-{self.guarantee}").shuffle(plan)
        return plan

    def _pace(self, writer: InputWriter, kills_done: int, seconds_per_kill: float) -> None:
        """Spread the rest of the input over the remaining faults plus a tail, at most at ``rate``."""
        faults = self.options.kills + self.options.pauses + self.options.broker_kills
        seconds = (faults - kills_done) * seconds_per_kill + self.options.tail_s
        writer.rate = max(20.0, min(self.options.rate, writer.remaining / seconds))

    def _newest_log(self) -> str:
        """The log of the worker started last (the one an early kill waits for)."""
        newest = self._newest
        return newest.log() if newest is not None and newest.log_path.exists() else ""

    async def _wait_until_processing(self, writing: asyncio.Task[None]) -> None:
        """The group settled and committed input since, so the workers are mid-processing."""
        await _wait_until(lambda: self._group_settled() or writing.done(), timeout=180,
                          what="the group to settle after a kill")
        baseline = await self._committed_total()
        wanted = baseline + self.options.progress_before_kill
        deadline = time.monotonic() + 120
        while not writing.done() and await self._committed_total() < wanted:
            if time.monotonic() > deadline:
                raise AssertionError(f"the group committed no progress in 120s after settling (at {baseline})")
            await asyncio.sleep(0.1)

    async def _owners_of_open_transactions(self, writing: asyncio.Task[None]) -> list[WorkerProcess]:
        """The workers whose tasks are writing echo records into an open transaction, polled until
        there are some.

        A partition counts when, between two polls, its last stable offset stayed below the
        earlier high watermark while the high watermark grew: the transaction that holds those
        records is still open and still receiving records, so it is not in the middle of its
        commit. Killing its owner at once lands the kill inside it instead of leaving that to
        chance against the commit interval.
        """
        deadline = time.monotonic() + OPEN_TRANSACTION_TIMEOUT_S
        before = await self._echo_ends()
        while not writing.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
            now = await self._echo_ends()
            writing_into_open = {tp.partition for tp, (stable, high) in now.items()
                                 if stable == before[tp][0] < before[tp][1] < high}
            before = now
            tasks = {f"{ECHO_SUBTOPOLOGY}_{partition}" for partition in writing_into_open}
            owners = [w for w in self.workers if w.running and assigned_tasks(w.log()) & tasks]
            if owners:
                return owners
        return []

    async def _echo_ends(self) -> dict[TopicPartition, tuple[int, int]]:
        """(last stable offset, high watermark) of every echo partition."""
        stable, high = await asyncio.gather(self._committed_reader.end_offsets(self._echo_partitions),
                                            self._uncommitted_reader.end_offsets(self._echo_partitions))
        return {tp: (stable[tp], high[tp]) for tp in self._echo_partitions}

    async def _committed_total(self, timeout: float = 60.0) -> int:
        """Offsets the group committed, summed over the input, table and repartition topics.

        Asked again while the admin client meets a killed broker node (NodeNotReadyError), up to ``timeout``.
        """
        assert self.admin is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                offsets = await self.admin.list_consumer_group_offsets(self.application_id)
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
                continue
            return sum(max(meta.offset, 0) for meta in offsets.values())

    async def _kill(self, acked: int, when: str, rate: float, preferred: list[WorkerProcess]) -> None:
        """SIGKILL one random worker (one of ``preferred`` if given), or in ``kill_all_share``
        of the kills every worker at once."""
        running = [w for w in self.workers if w.running]
        if not running:
            return
        everyone = len(running) > 1 and self.rng.random() < self.options.kill_all_share
        victims = running if everyone else [self.rng.choice(preferred or running)]
        wiped: list[bool] = []
        for victim in victims:
            self._killed.add(victim.name)
            victim.kill()
            wiped.append(self.rng.random() < self.options.wipe_share)
        pids = [v.process.pid for v in victims if v.process is not None]
        names = ", ".join(v.name for v in victims)
        self.kills.append(KillEvent(time.monotonic() - self.started, names, pids, acked, sum(wiped), when,
                                    everyone))
        inside = " inside its open transaction" if preferred and not everyone else ""
        self.say(f"kill -9 {names} (pid {', '.join(map(str, pids))}) while {when}{inside}, at {acked} input records "
                 f"(input at {rate:.0f}/s){f'; {sum(wiped)} state dir(s) wiped' if any(wiped) else ''}")
        # The pause is part of the chaos (restarts at different points of the rebalance), not a wait.
        await asyncio.sleep(self.rng.uniform(0.0, self.options.max_restart_delay_s))
        for victim, wipe in zip(victims, wiped):
            self._replace(victim, wipe)

    def _replace(self, old: WorkerProcess, wipe: bool) -> WorkerProcess:
        state_dir = Path(old.state_dir)
        if wipe:
            shutil.rmtree(state_dir, ignore_errors=True)
        self._restarts += 1
        base = old.name.split(".")[0]
        new = self._worker(f"{base}.{self._restarts}", state_dir).start()
        self.workers[self.workers.index(old)] = new
        self._newest = new
        self.retired.append(old)
        return new

    async def _supervise(self) -> None:
        """A worker that exits without being killed is a finding: record it, and restart it to go on."""
        while True:
            for worker in list(self.workers):
                if worker.name in self._killed:
                    continue
                if worker.process is not None and worker.process.poll() is not None:
                    tail = worker.log()[-2000:].strip().splitlines()
                    last = tail[-1] if tail else ""
                    self.unexpected_exits.append(f"{worker.name} exit code {worker.process.returncode} "
                                                 f"({worker.log_path}): {last}")
                    self.say(f"{worker.name} died on its own with exit code {worker.process.returncode}; restarting")
                    self._replace(worker, wipe=False)
            await asyncio.sleep(0.2)

    # -- the end -------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Wait until the group's committed offsets leave nothing to read in any topic it consumes,
        and then until no topic of the run grows for ``quiet_s``."""
        deadline = time.monotonic() + self.options.drain_timeout_s
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="chaos-drain")
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    isolation_level="read_committed", client_id="chaos-drain")
        await admin.start()
        await consumer.start()
        try:
            sources = self.topics.sources + [t for t in await internal_topics(admin, self.application_id)
                                             if t.endswith("-repartition")]
            partitions = await topic_partitions(self.bootstrap, sources)
            watched = self.topics.outputs + await internal_topics(admin, self.application_id)
            last_report = 0.0
            while True:
                committed = await admin.list_consumer_group_offsets(self.application_id)
                pending = await _unconsumed(consumer, partitions, committed)
                if not pending and await self._quiet(watched, deadline):
                    return
                now = time.monotonic()
                if now - last_report > 10:
                    self.say(f"waiting for {len(pending)} partitions: {', '.join(sorted(pending))[:200]}")
                    last_report = now
                if now > deadline:
                    raise AssertionError(f"not drained after {self.options.drain_timeout_s}s; unconsumed: {pending}")
                await asyncio.sleep(0.5)
        finally:
            await consumer.stop()
            await admin.close()

    async def _quiet(self, topics: list[str], deadline: float) -> bool:
        """True if the high watermarks of ``topics`` stay put for ``quiet_s`` (nothing is still being written)."""
        before = await end_offsets(self.bootstrap, topics, "read_uncommitted")
        quiet_until = time.monotonic() + self.options.quiet_s
        while time.monotonic() < min(quiet_until, deadline):
            await asyncio.sleep(0.25)
            if await end_offsets(self.bootstrap, topics, "read_uncommitted") != before:
                return False
        return True

    async def _stop_workers(self) -> list[str]:
        """SIGTERM every worker; each must shut down cleanly with exit code 0."""
        codes = await asyncio.gather(*(w.stop(signal.SIGTERM, timeout=60) for w in self.workers),
                                     return_exceptions=True)
        return [f"{w.name} ({w.log_path}): {code!r}" for w, code in zip(self.workers, codes) if code != 0]

    def _log_events(self) -> dict[str, int]:
        text = "".join(w.log() for w in self.retired + self.workers if w.log_path.exists())
        return {name: len(pattern.findall(text)) for name, pattern in LOG_EVENTS.items()}


async def _unconsumed(consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
                      committed: dict[TopicPartition, object]) -> dict[str, int]:
    """Partitions where a read_committed reader starting at the group's committed offset still finds records.

    Comparing committed offsets with end offsets is not enough under exactly-once: the
    commit marker after the last transaction takes an offset no record ever will.
    """
    ends = await consumer.end_offsets(partitions)
    starts = {tp: getattr(committed.get(tp), "offset", -1) for tp in partitions}
    starts = {tp: max(offset, 0) for tp, offset in starts.items()}
    candidates = [tp for tp in partitions if starts[tp] < ends[tp]]
    if not candidates:
        return {}
    consumer.assign(candidates)
    for tp in candidates:
        consumer.seek(tp, starts[tp])
    pending: dict[str, int] = {}
    open_ = set(candidates)
    deadline = time.monotonic() + 30
    while open_ and time.monotonic() < deadline:
        batches = await consumer.getmany(*open_, timeout_ms=200, max_records=1_000)
        for tp, messages in batches.items():
            if messages:
                pending[f"{tp.topic}:{tp.partition}"] = ends[tp] - starts[tp]
                open_.discard(tp)
        for tp in list(open_):
            if await consumer.position(tp) >= ends[tp]:
                open_.discard(tp)
    for tp in open_:
        pending[f"{tp.topic}:{tp.partition}"] = ends[tp] - starts[tp]
    return pending


async def _wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def run_chaos(bootstrap: str, guarantee: str, options: ChaosOptions,
                    broker: DevBroker | None = None) -> ChaosResult:
    """One run; the Python entry point the pytest short form uses (``broker``: for broker kills)."""
    return await Chaos(bootstrap, guarantee, options, broker).run()


def side_by_side(results: list[ChaosResult]) -> str:
    """The guarantees' reports next to each other: what at-least-once lets through that exactly-once does not."""
    names = [check.name for check in results[0].report.checks]
    header = f"  {'check':<13}" + "".join(f"{r.guarantee + ' (dup/gap/infl/mis)':>38}" for r in results)
    lines = ["== side by side", header]
    for name in names:
        cells = []
        for result in results:
            check = result.report.check(name)
            tally = "/".join(str(getattr(check, kind)) for kind in KINDS)
            cells.append(f"{tally + (' ok' if check.passed(result.guarantee) else ' FAIL'):>38}")
        lines.append(f"  {name:<13}" + "".join(cells))
    lines.append(f"  {'aborted echo':<13}" + "".join(f"{r.report.aborted_echo_records:>38}" for r in results))
    lines.append(f"  {'kills':<13}" + "".join(f"{len(r.kills):>38}" for r in results))
    lines.append(f"  {'duration':<13}" + "".join(f"{r.duration_s:>37.1f}s" for r in results))
    lines.append(f"  {'run':<13}" + "".join(f"{'PASS' if r.ok else 'FAIL':>38}" for r in results))
    return "\n".join(lines)


async def _main_async(bootstrap: str, guarantees: list[str], options: ChaosOptions,
                      broker: DevBroker | None = None) -> int:
    results = []
    for guarantee in guarantees:
        result = await run_chaos(bootstrap, guarantee, options, broker)
        print(result.format(), flush=True)
        results.append(result)
    if len(results) > 1:
        print(side_by_side(results))
    return 0 if all(result.ok for result in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = ChaosOptions()
    parser.add_argument("--guarantee", choices=GUARANTEES + ("both",), default="both")
    parser.add_argument("--records", type=int, default=defaults.records)
    parser.add_argument("--kills", type=int, default=defaults.kills)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--keys", type=int, default=defaults.keys)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--partitions", type=int, default=defaults.partitions, help="of the input and outputs")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="input records per second")
    parser.add_argument("--wipe-share", type=float, default=defaults.wipe_share,
                        help="share of restarts with an empty state dir")
    parser.add_argument("--kill-all-share", type=float, default=defaults.kill_all_share,
                        help="share of kills that kill every worker at once")
    parser.add_argument("--early-kill-share", type=float, default=defaults.early_kill_share,
                        help="share of kills that hit the group while it recovers from the previous kill")
    parser.add_argument("--max-restart-delay", type=float, default=defaults.max_restart_delay_s,
                        help="longest pause (s) between a kill and the restart")
    parser.add_argument("--commit-interval-ms", type=int, default=defaults.commit_interval_ms)
    parser.add_argument("--drain-timeout", type=float, default=defaults.drain_timeout_s)
    parser.add_argument("--pauses", type=int, default=defaults.pauses,
                        help="zombie faults: SIGSTOP a worker past the session timeout, then SIGCONT it")
    parser.add_argument("--broker-kills", type=int, default=defaults.broker_kills,
                        help="SIGKILL and restart the leading broker node (a 3-node dev broker of its own)")
    parser.add_argument("--replication", type=int, default=None,
                        help="replication factor of the topics (default 1; 3 with --broker-kills)")
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of starting a dev broker")
    parser.add_argument("--log-dir", type=Path, default=None, help="where worker logs go (default: a temp dir)")
    parser.add_argument("--keep-topics", action="store_true", help="leave the run's topics for inspection")
    args = parser.parse_args(argv)
    if args.keys < 20:
        parser.error("--keys must be at least 20")
    if args.workers < 2:
        parser.error("--workers must be at least 2, or there is nobody to take over from a killed worker")
    if args.broker_kills and args.bootstrap:
        parser.error("--broker-kills needs the run's own 3-node dev broker: leave out --bootstrap")
    options = ChaosOptions(records=args.records, kills=args.kills, workers=args.workers, keys=args.keys,
                           seed=args.seed, partitions=args.partitions, rate=args.rate, wipe_share=args.wipe_share,
                           kill_all_share=args.kill_all_share, early_kill_share=args.early_kill_share,
                           max_restart_delay_s=args.max_restart_delay, commit_interval_ms=args.commit_interval_ms,
                           drain_timeout_s=args.drain_timeout, keep_topics=args.keep_topics, log_dir=args.log_dir,
                           pauses=args.pauses, broker_kills=args.broker_kills,
                           replication=args.replication or (3 if args.broker_kills else 1))
    guarantees = list(GUARANTEES) if args.guarantee == "both" else [args.guarantee]
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = DevBroker(nodes=3 if args.broker_kills else 1)
        broker.start()
        bootstrap = broker.bootstrap_servers
        print(f"dev broker at {bootstrap}", flush=True)
    try:
        return asyncio.run(_main_async(bootstrap, guarantees, options, broker))
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
