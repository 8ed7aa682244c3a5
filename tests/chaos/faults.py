"""The chaos test's faults besides kill -9: zombie workers and killed broker nodes.

- **pause** (a zombie): SIGSTOP a worker, preferably one writing into an open transaction, keep
  it stopped until the group has given all its tasks to the others and they have committed
  past it, then SIGCONT it. The zombie wakes up with open transactions, fetched records and a
  stale group membership. Under exactly-once nothing it still writes may become visible to
  read_committed readers (its producers were fenced by the new owners' InitProducerId), and it
  must notice, let go of its tasks and rejoin the group without dying.
- **broker**: SIGKILL the broker node that leads most input and echo partitions, wait until
  the leadership moved and the group committed progress without it, then restart it. Workers
  must ride through the leader changes (and a group or transaction coordinator that moves)
  with retries, without losing or repeating anything under exactly-once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaError

from tests.chaos.verifier import internal_topics
from tests.kafka_helpers import wait_for

if TYPE_CHECKING:
    from tests.chaos.run import Chaos
    from tests.workers import WorkerProcess

#: Topics of the cluster itself that must be fully replicated again before the next broker kill.
CLUSTER_TOPICS = ("__consumer_offsets", "__transaction_state")


@dataclass
class KillEvent:
    """One fault: the worker(s) or broker node it hit, when, and how many state dirs were wiped."""

    at_s: float
    workers: str
    pids: list[int]
    acked: int
    wiped: int
    #: "processing" (the group was settled and committing) or "rebalancing" (still recovering).
    when: str
    #: Every worker was killed at once.
    everyone: bool
    #: "kill" (SIGKILL of workers), "pause" (a zombie: SIGSTOP, then SIGCONT) or "broker" (a broker node).
    kind: str = "kill"
    #: What a pause or broker kill went through (printed with the report).
    detail: str = ""


async def pause_worker(chaos: Chaos, acked: int, rate: float, preferred: list[WorkerProcess]) -> KillEvent:
    """Make a zombie of one worker (one of ``preferred``, the owners of open transactions, if any)."""
    running = [w for w in chaos.workers if w.running]
    victim = chaos.rng.choice(preferred or running)
    assert victim.process is not None
    at = time.monotonic()
    victim.process.send_signal(signal.SIGSTOP)
    chaos.paused = victim
    inside = " inside its open transaction" if preferred else ""
    chaos.say(f"kill -STOP {victim.name} (pid {victim.process.pid}) while processing{inside}, at {acked} input "
              f"records (input at {rate:.0f}/s)")
    try:
        await wait_for(chaos._group_settled, timeout=120, interval=0.1,
                       message=f"the other workers to take {victim.name}'s tasks")
        taken_s = time.monotonic() - at
        progress = await _progress(chaos, chaos.options.progress_before_kill, timeout=60)
    finally:
        offset = len(victim.log())
        victim.process.send_signal(signal.SIGCONT)
        chaos.paused = None
    stopped_s = time.monotonic() - at
    chaos.say(f"kill -CONT {victim.name} after {stopped_s:.1f}s (the others held its tasks after {taken_s:.1f}s "
              f"and committed {progress} records since)")
    await wait_for(lambda: "assigned tasks" in victim.log()[offset:] or not victim.running, timeout=120,
                   message=f"the zombie {victim.name} to rejoin the group")
    woke = victim.log()[offset:]
    fenced = woke.count("fenced")
    detail = (f"{victim.name} stopped {stopped_s:.1f}s{inside} (its tasks moved after {taken_s:.1f}s); "
              f"after SIGCONT {fenced} fenced commit(s) logged, rejoined in {time.monotonic() - at - stopped_s:.1f}s"
              f"{'' if victim.running else '; then EXITED'}")
    return KillEvent(at - chaos.started, victim.name, [victim.process.pid], acked, 0, "processing", False,
                     kind="pause", detail=detail)


async def kill_leader_broker(chaos: Chaos, acked: int, rate: float) -> KillEvent:
    """SIGKILL the node leading most input and echo partitions; restart it once the group went on without it.

    The restart (a JVM start, 10-30 s on a busy machine) goes on while the run does: the next
    broker kill, and the end of the run, wait for it (``chaos.restarts``).
    """
    broker = chaos.broker
    assert broker is not None and chaos.admin is not None
    await asyncio.gather(*chaos.restarts)
    watched = await _replicated_topics(chaos)
    await wait_for(lambda: _fully_replicated(chaos, watched), timeout=120, interval=0.5,
                   message="every partition to be fully replicated again before a broker kill")
    leaders = await _leaders(chaos, [chaos.topics.input, chaos.topics.echo])
    counts = Counter(leaders.values())
    most = max(counts.values())
    node_id = chaos.rng.choice(sorted(node for node, count in counts.items() if count == most))
    index = node_id - 1  # DevBroker's node i has node id i + 1
    pid = broker.node_pid(index) or 0
    at = time.monotonic()
    broker.kill_node(index)
    chaos.say(f"kill -9 broker node {index} (pid {pid}), leader of {most} of {len(leaders)} input and echo "
              f"partitions, at {acked} input records (input at {rate:.0f}/s)")
    await wait_for(lambda: _led_elsewhere(chaos, [chaos.topics.input, chaos.topics.echo], node_id), timeout=60,
                   interval=0.2, message=f"the partitions led by node {index} to get other leaders")
    moved_s = time.monotonic() - at
    progress = await _progress(chaos, chaos.options.progress_before_kill, timeout=90)
    went_on_s = time.monotonic() - at
    event = KillEvent(at - chaos.started, f"broker node {index}", [pid], acked, 0, "processing", False,
                      kind="broker")

    async def restart() -> None:
        await asyncio.to_thread(broker.restart_node, index)
        back_s = time.monotonic() - at
        chaos.say(f"broker node {index} back {back_s:.1f}s after the kill")
        event.detail = (f"node {index} led {most} of {len(leaders)} input/echo partitions; leaders moved after "
                        f"{moved_s:.1f}s, the group committed {progress} records without it by {went_on_s:.1f}s, "
                        f"node back after {back_s:.1f}s")

    chaos.say(f"restarting broker node {index} (leaders moved after {moved_s:.1f}s, {progress} records committed "
              f"without it)")
    chaos.restarts.append(asyncio.create_task(restart(), name=f"restart-node-{index}"))
    return event


async def _progress(chaos: Chaos, records: int, timeout: float) -> int:
    """Wait until the group committed ``records`` more (or the input ended); how many it committed."""
    baseline = await _committed(chaos)
    deadline = time.monotonic() + timeout
    now = baseline
    while now < baseline + records and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = max(now, await _committed(chaos))
    if now < baseline + records and chaos.workers and all(w.running for w in chaos.workers):
        chaos.say(f"the group committed only {now - baseline} records in {timeout:.0f}s")
    return now - baseline


async def _committed(chaos: Chaos) -> int:
    """The group's committed total; 0 while its coordinator cannot answer (a killed broker)."""
    try:
        return await chaos._committed_total()
    except (TimeoutError, KafkaError, OSError):
        return 0


async def _replicated_topics(chaos: Chaos) -> list[str]:
    assert chaos.admin is not None
    return [*chaos.topics.sources, *chaos.topics.outputs, *await internal_topics(chaos.admin, chaos.application_id),
            *CLUSTER_TOPICS]


async def _describe(chaos: Chaos, topics: list[str]) -> list[dict[str, Any]] | None:
    assert chaos.admin is not None
    try:
        described: list[dict[str, Any]] = await chaos.admin.describe_topics(topics)
    except (TimeoutError, KafkaError, OSError):
        return None  # asked a node that is down, or the metadata is moving: ask again
    return described


async def _fully_replicated(chaos: Chaos, topics: list[str]) -> bool:
    described = await _describe(chaos, topics)
    return described is not None and all(
        topic["error_code"] == 0 and all(len(p["isr"]) == len(p["replicas"]) for p in topic["partitions"])
        for topic in described)


async def _leaders(chaos: Chaos, topics: list[str]) -> dict[tuple[str, int], int]:
    described = await wait_for(lambda: _describe(chaos, topics), timeout=30, message=f"the leaders of {topics}")
    return {(str(topic["topic"]), int(p["partition"])): int(p["leader"])
            for topic in described for p in topic["partitions"]}


async def _led_elsewhere(chaos: Chaos, topics: list[str], node_id: int) -> bool:
    described = await _describe(chaos, topics)
    return described is not None and all(
        p["leader"] not in (node_id, -1) for topic in described for p in topic["partitions"])
