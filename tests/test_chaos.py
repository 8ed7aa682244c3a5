"""The chaos test in CI: the short form of ``python -m tests.chaos.run`` (see docs/chaos.md).

The unit tests first prove the verifier itself catches what it claims to (a verifier
that sees nothing would make the chaos runs pass vacuously); the broker tests then kill
workers with SIGKILL while input flows and verify both guarantees.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Callable

import orjson
import pytest

from streamer.devbroker import DevBroker
from streamer.testing import TopologyTestDriver
from tests.chaos import app
from tests.chaos.generator import (
    TABLE_LEAD_MS,
    TICK_MS,
    InputRecord,
    TableRow,
    enrichment_expectations,
    generate_input,
    generate_table,
    partition_of,
    running_aggregates,
    window_expectations,
    window_key,
)
from tests.chaos.run import ChaosOptions, ChaosResult, run_chaos
from tests.chaos.verifier import (
    Check,
    Message,
    Partitions,
    check_echo,
    check_enriched,
    check_final,
    check_input,
    check_updates,
    check_windowed,
)


def _as_messages(records: list[InputRecord], base: int = 1_000) -> list[Message]:
    return [Message(i, r.key_bytes, r.payload, base + r.ts_offset_ms) for i, r in enumerate(records)]


def test_the_input_is_a_function_of_seed_count_and_keys() -> None:
    first = generate_input(7, 2_000, 20)
    assert first == generate_input(7, 2_000, 20)
    assert first != generate_input(8, 2_000, 20)
    assert len({r.key for r in first}) == 20
    for key, history in running_aggregates(first).items():
        inputs = [r for r in first if r.key == key]
        assert [r.seq for r in inputs] == list(range(len(inputs)))
        assert history[-1]["count"] == len(inputs) and history[-1]["sum"] == sum(r.value for r in inputs)
    offsets = [r.ts_offset_ms for r in first]
    assert any(b < a for a, b in itertools.pairwise(offsets)), "timestamps should be out of order somewhere"


def test_the_verifier_counts_duplicates_gaps_and_foreign_records_in_the_echo() -> None:
    generated = generate_input(1, 400, 20)
    written = {p: _as_messages([r for r in generated if partition_of(r.key, 6) == p]) for p in range(6)}
    assert check_input(generated, written, 6, 1_000).passed("exactly_once")
    assert not check_input(generated, {**written, 2: written[2][1:]}, 6, 1_000).passed("at_least_once")

    records = [r for r in generated if partition_of(r.key, 6) == 0]
    inputs = {0: written[0]}
    assert check_echo(inputs, {0: list(inputs[0])}, {0: len(records)}).passed("exactly_once")

    # A replay of offsets 3..5 after a crash, then offsets 9 and 10 lost, then a record no input has.
    echo = inputs[0][:6] + inputs[0][3:9] + inputs[0][11:]
    echo.append(Message(999, b"k00", b"{}", 0))
    check = check_echo(inputs, {0: echo}, {0: len(records)})
    assert (check.duplicates, check.gaps, check.mismatches) == (3, 2, 1)
    assert not check.passed("exactly_once") and not check.passed("at_least_once")

    replay_only = check_echo(inputs, {0: inputs[0][:6] + inputs[0][3:]}, {0: len(records)})
    assert replay_only.duplicates == 3 and replay_only.passed("at_least_once")
    assert not replay_only.passed("exactly_once")


def test_the_verifier_lines_updates_up_with_inputs() -> None:
    expected = running_aggregates(generate_input(2, 300, 20))
    key = max(expected, key=lambda k: len(expected[k]))
    history = expected[key]
    assert check_updates("agg", expected, dict(expected)).passed("exactly_once")

    # Input seq 4 folded twice into the state: every update after it counts one too many.
    inflated = [dict(u, count=u["count"] + 1) for u in history[5:]]
    check = check_updates("agg", expected, {**expected, key: history[:5] + [history[4]] + inflated})
    assert check.duplicates == 1 and check.inflated == len(history) - 5
    assert check.passed("at_least_once") and not check.passed("exactly_once")

    lost = check_updates("agg", expected, {**expected, key: history[:3] + history[4:-1]})
    assert lost.gaps == 2 and not lost.passed("at_least_once")

    restarted = dict(history[6], count=1)  # state lost: the count started over
    wrong = check_updates("agg", expected, {**expected, key: history[:6] + [restarted] + history[7:]})
    assert wrong.mismatches == 1 and not wrong.passed("at_least_once")


def test_the_verifier_checks_every_final_value() -> None:
    expected = running_aggregates(generate_input(3, 200, 20))
    finals = {f"{where}/{key}": history[-1] for key, history in expected.items()
              for where in ("agg-direct", "agg-repart", "chaos-agg-direct-changelog", "chaos-agg-repart-changelog")}
    assert check_final(expected, finals).passed("exactly_once")
    some_key = next(iter(expected))
    del finals[f"agg-repart/{some_key}"]
    assert check_final(expected, finals).gaps == 1
    assert isinstance(check_final(expected, {}), Check)


def test_lateness_follows_each_partitions_stream_time() -> None:
    # One partition, 1 s windows, 1 s grace: stream time is the highest timestamp so far.
    plan = [("k00", 100, 1), ("k00", 2_500, 2), ("k00", 900, 4), ("k01", 1_600, 8), ("k00", 4_100, 16)]
    records = [InputRecord(i, key, 0, value, ts) for i, (key, ts, value) in enumerate(plan)]
    expected = window_expectations(records, 1, base_timestamp_ms=0)
    # ts 900 comes at stream time 2500 >= its window's end 1000 + grace: late. ts 1600 is older
    # than 2500 but its window [1000, 2000) closes only at 3000: counted.
    assert expected.late == [records[2]] and expected.reordered == 1
    assert expected.finals == {("k00", 0): {"count": 1, "sum": 1}, ("k00", 2_000): {"count": 1, "sum": 2},
                               ("k01", 1_000): {"count": 1, "sum": 8}}
    assert expected.still_open == {("k00", 4_000)}  # closes at 6000, the partition ends at 4100


def test_the_generated_input_has_reordered_and_late_records_and_open_windows() -> None:
    records = generate_input(3, 20_000, 20)
    expected = window_expectations(records, 6, base_timestamp_ms=1_700_000_000_123)
    assert expected.reordered > 500 and 100 < len(expected.late) < 0.05 * len(records), expected.summary()
    assert expected.still_open and len(expected.finals) > 1_500, expected.summary()
    counted = sum(v["count"] for v in expected.finals.values())
    assert counted + len(expected.late) + len(expected.still_open) <= len(records)
    assert expected != window_expectations(records, 6, base_timestamp_ms=1_700_000_000_623), \
        "window alignment follows the absolute timestamps"


def _windowed_output(finals: dict[tuple[str, int], dict[str, int]], timestamps: dict[tuple[str, int], int],
                     partitions: int = 6) -> Partitions:
    out: Partitions = {p: [] for p in range(partitions)}
    for window, value in finals.items():
        key = window_key(*window)
        messages = out[partition_of(key, partitions)]
        messages.append(Message(len(messages), key.encode(), orjson.dumps(value), timestamps.get(window, 0)))
    return out


def test_the_verifier_wants_one_final_record_per_closed_window() -> None:
    expected = window_expectations(generate_input(4, 3_000, 20), 6, base_timestamp_ms=1_000_000)

    def check(finals: dict[tuple[str, int], dict[str, int]], timestamps: dict[tuple[str, int], int] | None = None,
              then: Callable[[Partitions], None] = lambda _: None) -> Check:
        output = _windowed_output(finals, timestamps or expected.timestamps)
        then(output)
        return check_windowed(expected, output, 6)

    assert check(expected.finals).passed("exactly_once")
    (first, first_value), (second, _), (third, third_value) = list(expected.finals.items())[:3]

    replayed = check(expected.finals, then=lambda output: output[0].extend(output[0][:2]))  # emitted again
    assert replayed.duplicates == 2 and replayed.passed("at_least_once") and not replayed.passed("exactly_once")

    inflated = check({**expected.finals, first: dict(first_value, count=first_value["count"] + 1)})
    assert inflated.inflated == 1 and inflated.passed("at_least_once") and not inflated.passed("exactly_once")

    assert check({w: v for w, v in expected.finals.items() if w != second}).gaps == 1

    early = check({**expected.finals, next(iter(expected.still_open)): {"count": 1, "sum": 0}})
    phantom = check({**expected.finals, ("k99", 0): {"count": 1, "sum": 0}})
    wrong = check({**expected.finals, third: dict(third_value, sum=third_value["sum"] + 1)})
    retimed = check(expected.finals, {**expected.timestamps, third: expected.timestamps[third] - 1})
    for failed in (early, phantom, wrong, retimed):
        assert failed.mismatches == 1 and not failed.passed("at_least_once"), failed.examples


def test_the_table_never_ties_with_the_input_and_rises_in_time() -> None:
    records = generate_input(6, 5_000, 20)
    table = generate_table(6, records, 20)
    assert table == generate_table(6, records, 20) and table != generate_table(7, records, 20)
    offsets = [row.ts_offset_ms for row in table]
    assert all(a < b for a, b in itertools.pairwise(offsets))
    assert not set(offsets) & {r.ts_offset_ms for r in records}
    assert len({row.key for row in table}) == 20 and any(row.deleted for row in table)
    for key in {row.key for row in table}:
        assert [row.version for row in table if row.key == key] == list(range(1, sum(r.key == key for r in table) + 1))


def test_an_input_meets_the_table_as_of_its_partitions_stream_time() -> None:
    # One partition: the task applies table rows older than the highest input timestamp so far.
    inputs = [("k00", 100), ("k00", 300), ("k00", 150), ("k01", 120), ("k00", 500)]
    records = [InputRecord(i, key, i, 0, ts) for i, (key, ts) in enumerate(inputs)]
    rows = [("k00", 50, False), ("k00", 200, False), ("k01", 250, False), ("k00", 400, True)]
    table = [TableRow(i, key, i + 1, deleted, ts) for i, (key, ts, deleted) in enumerate(rows)]
    expected = enrichment_expectations(records, table, 1)
    # ts 150 comes after ts 300: it sees version 2 (ts 200), newer than at its own time; so
    # does ts 120 of k01 (the row at 250). ts 500 comes after k00's tombstone at 400.
    assert expected.versions == {("k00", 0): 1, ("k00", 1): 2, ("k00", 2): 2, ("k01", 3): 3, ("k00", 4): None}
    assert (expected.newer_than_own_time, expected.without_row) == (2, 1)


def _enriched_output(records: list[InputRecord], versions: dict[tuple[str, int], int | None],
                     base: int = 1_000, partitions: int = 6) -> Partitions:
    out: Partitions = {p: [] for p in range(partitions)}
    for record in records:
        messages = out[partition_of(record.key, partitions)]
        value = orjson.dumps({"k": record.key, "s": record.seq, "version": versions[(record.key, record.seq)]})
        messages.append(Message(len(messages), record.key_bytes, value, base + record.ts_offset_ms))
    return out


def test_the_verifier_wants_each_input_enriched_once_with_its_version() -> None:
    records = generate_input(8, 2_000, 20)
    expected = enrichment_expectations(records, generate_table(8, records, 20), 6)

    def check(versions: dict[tuple[str, int], int | None] = expected.versions,
              then: Callable[[Partitions], None] = lambda _: None) -> Check:
        output = _enriched_output(records, versions)
        then(output)
        return check_enriched(records, expected, output, 6, 1_000)

    assert check().passed("exactly_once") and check().checked == len(records)
    first = next(r for r in records if r.seq == 0 and r.index >= 10)  # its key's first output is its own
    stale = {**expected.versions, (first.key, first.seq): 99}
    assert check(stale).mismatches == 1 and not check(stale).passed("at_least_once")
    lost = check(then=lambda output: output[partition_of(first.key, 6)].clear())
    assert lost.gaps > 1 and not lost.passed("at_least_once")

    def replay(output: Partitions, version: int | None) -> None:
        messages = output[partition_of(first.key, 6)]
        again = next(m for m in messages if m.key == first.key_bytes)
        value = dict(orjson.loads(again.value or b"{}"), version=version)
        messages.append(again._replace(offset=len(messages), value=orjson.dumps(value)))

    same = check(then=lambda output: replay(output, expected.versions[(first.key, first.seq)]))
    assert same.duplicates == 1 and same.passed("at_least_once") and not same.passed("exactly_once")
    ahead = check(then=lambda output: replay(output, 99))  # a replay that met a newer table
    assert ahead.duplicates == 1 and ahead.mismatches == 0 and ahead.passed("at_least_once"), ahead.examples

    def retime(output: Partitions) -> None:
        messages = output[partition_of(first.key, 6)]
        index = next(i for i, m in enumerate(messages) if m.key == first.key_bytes)
        messages[index] = messages[index]._replace(timestamp=messages[index].timestamp + 1)

    assert check(then=retime).mismatches == 1


def test_the_app_meets_the_expectations_in_the_test_driver() -> None:
    # One partition in the driver: its stream time runs over the whole input, as one task's would.
    # The table goes in as the generator writes it, ahead of the input; the task holds table rows
    # back while the input is empty (max_task_idle_ms, the driver's wall clock stands still) and
    # applies the rest once the idle time has passed at the end.
    records = generate_input(5, 3_000, 20)
    table = generate_table(5, records, 20)
    base = 1_700_000_000_321
    written = 0
    with TopologyTestDriver(app.build().build(), max_task_idle_ms=app.MAX_TASK_IDLE_MS) as driver:
        for start in range(0, len(records), 50):  # fetched batches, so stream time advances mid-batch
            batch = records[start:start + 50]
            ahead = [row for row in table[written:] if row.ts_offset_ms < batch[-1].index * TICK_MS + TABLE_LEAD_MS]
            if ahead:
                driver.pipe_batch("chaos-table", [(r.key, None if r.deleted else {"version": r.version},
                                                  base + r.ts_offset_ms) for r in ahead])
                written += len(ahead)
            driver.pipe_batch("chaos-input", [(r.key, r.payload, base + r.ts_offset_ms) for r in batch])
        driver.advance_wall_clock(app.MAX_TASK_IDLE_MS)
        windowed = driver.read_records("chaos-windowed", key_serde="bytes", value_serde="bytes")
        enriched = driver.read_records("chaos-enriched", key_serde="bytes", value_serde="bytes")
    windows = window_expectations(records, 1, base)
    check = check_windowed(windows, {0: [Message(r.offset, r.key, r.value, r.timestamp) for r in windowed]}, 1)
    assert check.passed("exactly_once") and check.checked == len(windows.finals), check.examples
    assert windows.late and windows.reordered, windows.summary()
    expected = enrichment_expectations(records, table, 1)
    read = {0: [Message(r.offset, r.key, r.value, r.timestamp) for r in enriched]}
    check = check_enriched(records, expected, read, 1, base)
    assert check.passed("exactly_once") and check.checked == len(records), check.examples
    assert expected.newer_than_own_time > 50 and expected.without_row, expected.summary()


def _explain(result: ChaosResult) -> str:
    return result.format()


@pytest.mark.broker
@pytest.mark.timeout(240)
@pytest.mark.parametrize("guarantee", ["exactly_once", "exactly_once_v2"])
async def test_exactly_once_survives_kill_minus_nine(kafka_bootstrap: str, tmp_path: Path, guarantee: str) -> None:
    # The kill plan follows from the seed: with seed 3 and these shares it has kills mid-processing,
    # kills while the group still recovers from the last one, and kills of all workers at once.
    # v1 (a producer per task) and v2 (one per worker, fenced by the group generation) alike.
    options = ChaosOptions(records=20_000, kills=3, seed=3, wipe_share=0.5, early_kill_share=0.5,
                           kill_all_share=0.34, quiet=True, log_dir=tmp_path, drain_timeout_s=150)
    result = await run_chaos(kafka_bootstrap, guarantee, options)
    print(result.format())
    assert result.ok, _explain(result)
    assert {k.when for k in result.kills} == {"processing", "rebalancing"}, _explain(result)
    assert any(k.everyone for k in result.kills), _explain(result)
    for name in ("echo", "agg-direct", "agg-repart", "enriched"):
        assert result.report.check(name).checked == options.records, _explain(result)
    assert result.report.check("windowed").checked > options.records // 20, _explain(result)
    assert result.report.aborted_echo_records > 0, "no kill landed inside a transaction: the run proved little"


@pytest.mark.broker
@pytest.mark.timeout(180)
async def test_at_least_once_loses_nothing_under_kill_minus_nine(kafka_bootstrap: str, tmp_path: Path) -> None:
    options = ChaosOptions(records=10_000, kills=2, rate=2_000, quiet=True, log_dir=tmp_path, drain_timeout_s=120)
    result = await run_chaos(kafka_bootstrap, "at_least_once", options)
    print(result.format())
    assert result.ok, _explain(result)
    assert result.report.total("gaps") == 0
    for name in ("echo", "agg-direct", "agg-repart", "enriched"):
        assert result.report.check(name).checked >= options.records, _explain(result)
    assert result.report.check("windowed").checked > options.records // 20, _explain(result)


@pytest.mark.broker
@pytest.mark.timeout(150)
async def test_exactly_once_fences_a_paused_zombie_worker(kafka_bootstrap: str, tmp_path: Path) -> None:
    # One worker stopped (SIGSTOP) inside an open transaction until the others own its tasks and
    # committed past it, then continued: it must be fenced (nothing it still writes is visible,
    # the verifier's checks) and rejoin without dying (the run fails on a worker that exits).
    options = ChaosOptions(records=6_000, kills=0, pauses=1, seed=5, quiet=True, log_dir=tmp_path,
                           drain_timeout_s=90)
    result = await run_chaos(kafka_bootstrap, "exactly_once", options)
    print(result.format())
    assert result.ok, _explain(result)
    (pause,) = result.kills
    assert pause.kind == "pause" and "rejoined" in pause.detail and "EXITED" not in pause.detail, _explain(result)
    for name in ("echo", "agg-direct", "agg-repart", "enriched"):
        assert result.report.check(name).checked == options.records, _explain(result)


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.timeout(330)
async def test_exactly_once_rides_through_a_killed_leader_broker(tmp_path: Path) -> None:
    # A 3-node cluster of its own (replication 3, min.insync.replicas 2): the node leading most
    # input and echo partitions is killed mid-run and restarted; nothing may be lost or repeated
    # and no worker may die of the leader changes (a worker that exits fails the run).
    broker = DevBroker(nodes=3)
    await asyncio.to_thread(broker.start)
    try:
        options = ChaosOptions(records=6_000, kills=0, broker_kills=1, replication=3, seed=7, quiet=True,
                               log_dir=tmp_path, drain_timeout_s=150)  # drains took up to 83 s at load 28
        result = await run_chaos(broker.bootstrap_servers, "exactly_once", options, broker)
    finally:
        await asyncio.to_thread(broker.stop)
    print(result.format())
    assert result.ok, _explain(result)
    (fault,) = result.kills
    assert fault.kind == "broker" and "leaders moved" in fault.detail, _explain(result)
    for name in ("echo", "agg-direct", "agg-repart", "enriched"):
        assert result.report.check(name).checked == options.records, _explain(result)
