"""write_batch drop ranges on every backend: deleted first, then the batch's puts, all in one batch."""

from __future__ import annotations

from streamer.state import KeyValueStore


def test_drop_ranges_go_before_the_entries(store: KeyValueStore) -> None:
    store.write_batch([(bytes([i]), b"v") for i in range(10)], 1)
    store.write_batch([(b"\x03", b"new"), (b"\x08", None)], 2, [(b"\x02", b"\x05"), (b"\x06", b"\x07")])
    assert dict(store.range(None, None)) == {
        b"\x00": b"v", b"\x01": b"v", b"\x03": b"new", b"\x05": b"v", b"\x07": b"v", b"\x09": b"v"}
    assert store.changelog_offset() == 2
