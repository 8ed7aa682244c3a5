"""The chaos test in CI: the short form of ``python -m tests.chaos.run`` (see docs/chaos.md).

The unit tests first prove the verifier itself catches what it claims to (a verifier
that sees nothing would make the chaos runs pass vacuously); the broker tests then kill
workers with SIGKILL while input flows and verify both guarantees.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.chaos.generator import InputRecord, generate_input, partition_of, running_aggregates
from tests.chaos.run import ChaosOptions, ChaosResult, run_chaos
from tests.chaos.verifier import Check, Message, check_echo, check_final, check_input, check_updates


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


def _explain(result: ChaosResult) -> str:
    return result.format()


@pytest.mark.broker
@pytest.mark.timeout(240)
async def test_exactly_once_survives_kill_minus_nine(kafka_bootstrap: str, tmp_path: Path) -> None:
    # The kill plan follows from the seed: with seed 3 and these shares it has kills mid-processing,
    # kills while the group still recovers from the last one, and kills of all workers at once.
    options = ChaosOptions(records=20_000, kills=3, seed=3, wipe_share=0.5, early_kill_share=0.5,
                           kill_all_share=0.34, quiet=True, log_dir=tmp_path, drain_timeout_s=150)
    result = await run_chaos(kafka_bootstrap, "exactly_once", options)
    print(result.format())
    assert result.ok, _explain(result)
    assert {k.when for k in result.kills} == {"processing", "rebalancing"}, _explain(result)
    assert any(k.everyone for k in result.kills), _explain(result)
    for name in ("echo", "agg-direct", "agg-repart"):
        assert result.report.check(name).checked == options.records, _explain(result)
    assert result.report.aborted_echo_records > 0, "no kill landed inside a transaction: the run proved little"


@pytest.mark.broker
@pytest.mark.timeout(180)
async def test_at_least_once_loses_nothing_under_kill_minus_nine(kafka_bootstrap: str, tmp_path: Path) -> None:
    options = ChaosOptions(records=10_000, kills=2, rate=2_000, quiet=True, log_dir=tmp_path, drain_timeout_s=120)
    result = await run_chaos(kafka_bootstrap, "at_least_once", options)
    print(result.format())
    assert result.ok, _explain(result)
    assert result.report.total("gaps") == 0
    for name in ("echo", "agg-direct", "agg-repart"):
        assert result.report.check(name).checked >= options.records, _explain(result)
