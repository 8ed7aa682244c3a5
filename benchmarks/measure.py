"""One timed run of one contender on one workload under one guarantee.

The clock starts when the contender's process is started and stops when the harness,
reading the output topic with ``read_committed`` from the beginning, has seen the expected
number of records: start-up, group join, processing and (under exactly-once) the commit
that makes the last record visible are all inside the figure, as a user would wait for them.
A workload with ``clock_from_first_output`` (enrich: the table must be loaded first) starts
the clock, and the CPU count, at the first visible output instead, and leaves the outputs
seen by then out of the rate (unless they were all of them: then it counts from the start).
Each run gets fresh topics and state, named after a unique application id, deleted after.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.contenders.spec import AppSpec
from benchmarks.dataset import TOPIC_CONFIGS, Dataset
from benchmarks.lineup import REPO, Contender
from benchmarks.process import CLOCK_TICKS_PER_S, ContenderProcess
from benchmarks.workloads import Workload

SAMPLE_EVERY_S = 0.5
#: Fewest ticks of CPU time a timed window must use for its CPU per record to count.
MIN_CPU_TICKS = 5


@dataclass
class RunResult:
    """What one run measured; ``status`` is ok, failed, timeout or wrong (outputs incorrect)."""

    contender: str
    workload: str
    guarantee: str
    run: int
    status: str
    expected: int
    outputs: int = 0
    elapsed_s: float | None = None
    first_output_s: float | None = None
    records_per_s: float | None = None
    peak_rss_mb: float | None = None
    #: CPU time of the contender's processes until its last output was seen, per input record.
    cpu_us_per_record: float | None = None
    exit_code: int | None = None
    error: str | None = None
    log_tail: str = ""
    log_path: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunContext:
    """What stays the same across a harness invocation's runs."""

    bootstrap: str
    data: Dataset
    session: str
    logs: Path
    timeout_s: float
    commit_interval_ms: dict[str, int]
    admin: AIOKafkaAdminClient
    stop_grace_s: float = 20.0
    extra_env: dict[str, str] = field(default_factory=dict)


async def timed_run(ctx: RunContext, contender: Contender, workload: Workload, guarantee: str,
                    run: int) -> RunResult:
    """Run ``contender`` once and measure it; never raises for the contender's own failures."""
    short = "eos" if guarantee == "exactly_once" else "alos"
    app_id = f"bench-{ctx.session}-{contender.name}-{workload.name}-{short}-r{run}"
    partitions = ctx.data.spec.partitions
    state_dir = tempfile.mkdtemp(prefix=f"{app_id}-")
    spec = AppSpec(bootstrap=ctx.bootstrap, input=ctx.data.topic, output=f"{app_id}-output",
                   table=ctx.data.table_topic or AppSpec.table, app_id=app_id,
                   workload=workload.name, guarantee=guarantee, state_dir=state_dir, partitions=partitions,
                   commit_interval_ms=ctx.commit_interval_ms[guarantee])
    result = RunResult(contender.name, workload.name, guarantee, run, "failed", workload.expected_outputs(ctx.data))
    await ctx.admin.create_topics([NewTopic(spec.output, partitions, 1, topic_configs=TOPIC_CONFIGS)])
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed", auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 * 1_048_576, fetch_max_bytes=32 * 1_048_576)
    last: dict[bytes | None, bytes | None] = {}
    process: ContenderProcess | None = None
    try:
        await wait_until_ready(ctx.admin, spec.output, partitions)
        await consumer.start()
        consumer.assign([TopicPartition(spec.output, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        env = {**contender.env(spec), **ctx.extra_env}
        log_path = ctx.logs / f"{app_id}.log"
        process = ContenderProcess(contender.argv(spec), env, REPO, log_path)
        result.log_path = str(log_path)
        await _wait_for_outputs(ctx, consumer, process, result, last, workload.clock_from_first_output)
    finally:
        if process is not None:
            result.exit_code = await asyncio.to_thread(process.stop, ctx.stop_grace_s)
            result.peak_rss_mb = round(process.peak_rss_mb, 1) if process.peaks else None
            if result.status != "ok":
                result.log_tail = process.tail()
        await consumer.stop()
        await _cleanup(ctx.admin, app_id)
        shutil.rmtree(state_dir, ignore_errors=True)
    if result.status == "ok":
        problem = workload.check(ctx.data, last)
        if problem:
            result.status, result.error = "wrong", problem
    return result


async def _wait_for_outputs(ctx: RunContext, consumer: AIOKafkaConsumer, process: ContenderProcess,
                            result: RunResult, last: dict[bytes | None, bytes | None],
                            from_first_output: bool) -> None:
    clock = _Clock(process, result.expected, ctx.data.spec.records)
    next_sample = clock.started
    while result.outputs < result.expected:
        fetched = await consumer.getmany(timeout_ms=100)
        now = time.perf_counter()
        for records in fetched.values():
            result.outputs += len(records)
            for record in records:
                last[record.key] = record.value
        if result.first_output_s is None and result.outputs:
            result.first_output_s = round(now - clock.started, 3)
            if from_first_output:
                clock.restart(now, result.outputs)
        if now >= next_sample:
            process.sample()
            next_sample = now + SAMPLE_EVERY_S
        if result.outputs >= result.expected:
            break
        if not process.running():
            result.error = (f"exited with code {process.popen.returncode} "
                            f"after {result.outputs}/{result.expected} outputs")
            return
        if now - process.started > ctx.timeout_s:
            result.status = "timeout"
            result.error = f"timed out after {ctx.timeout_s:.0f}s with {result.outputs}/{result.expected} outputs"
            clock.note(result, now)  # the pace so far, for the report
            return
    result.status = "ok"
    clock.note(result, time.perf_counter())


class _Clock:
    """Where a run's figures count from: the process start, or the first visible output."""

    def __init__(self, process: ContenderProcess, expected: int, records: int) -> None:
        self.process, self.expected, self.records = process, expected, records
        self.started = process.started
        self.cpu_before = 0.0
        self.outputs_before = 0

    def restart(self, now: float, outputs: int) -> None:
        """Count from now on; not if every output came at once (too short a run to time that way)."""
        if outputs >= self.expected:
            return
        self.process.sample()
        self.started, self.cpu_before, self.outputs_before = now, self.process.cpu_s, outputs

    def note(self, result: RunResult, now: float) -> None:
        """Elapsed time, rate and CPU per record: input records equivalent to the outputs counted.

        A window in which the process used less than ``MIN_CPU_TICKS`` of the kernel's CPU
        clock (10 ms a tick) measures nothing, often 0: CPU then counts the whole run, start-up
        included, over every record (only tiny runs, such as the harness's smoke test).
        """
        elapsed = now - self.started
        done = self.records * (min(result.outputs, self.expected) - self.outputs_before) / self.expected
        result.elapsed_s = round(elapsed, 3)
        result.records_per_s = round(done / elapsed, 1) if elapsed > 0 else None
        self.process.sample()
        if self.process.cpu and done:
            used, counted = self.process.cpu_s - self.cpu_before, done
            if used * CLOCK_TICKS_PER_S < MIN_CPU_TICKS:
                used, counted = self.process.cpu_s, self.records
            result.cpu_us_per_record = round(used / counted * 1e6, 2)


async def wait_until_ready(admin: AIOKafkaAdminClient, topic: str, partitions: int, timeout_s: float = 30) -> None:
    """Wait for a new topic's partitions to have leaders, so nobody starts on a half-made topic."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = (await admin.describe_topics([topic]))[0]
        leaders = [p for p in described.get("partitions", ()) if p.get("error_code") == 0 and p.get("leader", -1) >= 0]
        if described.get("error_code") == 0 and len(leaders) >= partitions:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"topic {topic} has no leaders for all {partitions} partitions after {timeout_s}s")
        await asyncio.sleep(0.05)


async def _cleanup(admin: AIOKafkaAdminClient, app_id: str) -> None:
    """Delete every topic the run created: its output and the contender's internal topics."""
    topics = [t for t in await admin.list_topics() if app_id in t]
    if topics:
        try:
            await admin.delete_topics(topics)
        except Exception as error:  # a leftover topic costs disk, not correctness
            print(f"warning: could not delete {topics}: {error!r}")
