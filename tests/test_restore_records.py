"""The C decoder of record batches a restore uses gives what aiokafka's batch reader gives."""

from __future__ import annotations

import random

import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from streamer.runtime import changelog_fetch

native = pytest.importorskip("streamer._native.records")


def built(rows: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]], compression: int = 0) -> bytes:
    builder = DefaultRecordBatchBuilder(2, compression, 0, -1, -1, -1, 10_000_000)
    for offset, (key, value, headers) in enumerate(rows):
        assert builder.append(offset * 2, None, key, value, headers) is not None  # gaps, as compaction leaves
    return bytes(builder.build())


def rows(seed: int, count: int) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]]:
    rng = random.Random(seed)
    out: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]] = []
    for _ in range(count):
        key = None if rng.random() < 0.05 else rng.randbytes(rng.choice([0, 1, 16, 200]))
        value = None if rng.random() < 0.2 else rng.randbytes(rng.choice([0, 5, 100, 70_000]))  # 3-byte lengths
        headers = [("h", rng.randbytes(3)), ("none", None)] if rng.random() < 0.3 else []
        out.append((key, value, headers))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_native_entries_equal_aiokafka_records(seed: int) -> None:
    data = built(rows(seed, 300))
    batch = DefaultRecordBatch(data)
    expected = [(record.key, record.value) for record in DefaultRecordBatch(data)]
    assert changelog_fetch._batch_entries(batch, data, 0, len(data)) == expected
    assert native.entries(data, 61, len(data), 300) == expected


def test_a_compressed_batch_is_read_by_aiokafka() -> None:
    data = built(rows(9, 50), compression=DefaultRecordBatch.CODEC_GZIP)
    expected = [(record.key, record.value) for record in DefaultRecordBatch(data)]
    assert changelog_fetch._batch_entries(DefaultRecordBatch(data), data, 0, len(data)) == expected


@pytest.mark.parametrize("cut", [62, 70, 200, -1])
def test_a_truncated_or_miscounted_batch_raises(cut: int) -> None:
    data = built(rows(1, 20))
    with pytest.raises(ValueError):
        native.entries(data[:cut], 61, len(data[:cut]), 20)
    with pytest.raises(ValueError):
        native.entries(data, 61, len(data), 21)
