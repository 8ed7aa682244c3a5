"""A RocksDB store with damaged files is rebuilt empty (its changelog restores it); other failures stay failures."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from rocksdict import Rdict

from streamer.errors import StateStoreError, StoreCorruptedError, StoreLockedError
from streamer.runtime.local_tasks import CHECKPOINT_FILE, checkpointed_offsets, remove_unused, write_checkpoint
from streamer.runtime.task_stores import TaskStores, open_task_stores
from streamer.state import open_store
from streamer.state.rocksdb_store import _OFFSET_KEY, META_COLUMN_FAMILY, RocksDBStore, _options
from streamer.topology.topology import StoreSpec, SubTopology

ROWS = 2_000


def _filled(directory: Path, name: str = "s", files: int = 3) -> Path:
    """A closed store with ``files`` SST files of ROWS rows each and offset ``files``; returns its path."""
    store = open_store("rocksdb", directory, name)
    for number in range(files):
        store.write_batch([(b"k%06d" % (number * ROWS + i), b"v" * 100) for i in range(ROWS)], number + 1)
        store.flush()
    store.close()
    return directory / name


def _one(path: Path, prefix: str = "", suffix: str = "") -> Path:
    return sorted(p for p in path.iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix))[0]


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)


def _garble(path: Path, at: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(at)
        handle.write(bytes(byte ^ 0x5A for byte in handle.read(64)))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "CURRENT empty": lambda p: _truncate(p / "CURRENT", 0),
    "CURRENT garbled": lambda p: (p / "CURRENT").write_bytes(b"\x00MANIFEST-9\x01\n"),
    # what a kill -9 in RocksDB's own file-by-file delete (DestroyDB) leaves: the log without its CURRENT
    "CURRENT missing": lambda p: (p / "CURRENT").unlink(),
    "MANIFEST truncated": lambda p: _truncate(_one(p, "MANIFEST-"), 30),
    "MANIFEST garbled": lambda p: _garble(_one(p, "MANIFEST-"), 0),
    "MANIFEST missing": lambda p: _one(p, "MANIFEST-").unlink(),
    "SST truncated": lambda p: _truncate(_one(p, suffix=".sst"), 100),
    "SST garbled footer": lambda p: _garble(_one(p, suffix=".sst"), _one(p, suffix=".sst").stat().st_size - 64),
    "SST missing": lambda p: _one(p, suffix=".sst").unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_store_damaged_on_disk_opens_empty_with_a_warning(tmp_path: Path, damage: Callable[[Path], None],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    damage(_filled(tmp_path))
    with caplog.at_level(logging.WARNING, "streamer.state"):
        store = open_store("rocksdb", tmp_path, "s")
    assert store.changelog_offset() is None, "a rebuilt store restores from the changelog's start"
    assert list(store.range(None, None)) == []
    assert f"RocksDB store s at {tmp_path / 's'} is damaged" in caplog.text
    assert "deleting it and opening it empty, to be restored from its changelog" in caplog.text
    store.write_batch([(b"a", b"1")], 7)  # usable, and durable like any other
    store.close()
    again = open_store("rocksdb", tmp_path, "s")
    assert (again.get(b"a"), again.changelog_offset()) == (b"1", 7)
    again.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_an_unreadable_changelog_offset_rebuilds_the_store(tmp_path: Path) -> None:
    path = _filled(tmp_path)
    options = _options()
    db = Rdict(str(path), options, column_families={META_COLUMN_FAMILY: options})
    db.get_column_family(META_COLUMN_FAMILY)[_OFFSET_KEY] = b"\x01\x02\x03"
    db.close()
    store = open_store("rocksdb", tmp_path, "s")
    assert (store.changelog_offset(), store.approximate_count()) == (None, 0)
    store.close()


def test_damage_found_while_open_fails_loudly_then_rebuilds_at_the_next_open(tmp_path: Path) -> None:
    """A data block is only read when a key in it is: the read fails the task, and the restart must not loop."""
    path = _filled(tmp_path, files=1)
    sst = _one(path, suffix=".sst")
    store = open_store("rocksdb", tmp_path, "s")
    _garble(sst, 10)  # the first data block, under the open store
    with pytest.raises(StoreCorruptedError, match="it is damaged .*restored from its changelog when it is opened next"):
        for key in (b"k%06d" % i for i in range(ROWS)):
            store.get(key)
    assert (tmp_path / "s.damaged").read_text().startswith("cannot read it: Corruption:")
    store.close()
    rebuilt = open_store("rocksdb", tmp_path, "s")
    assert (rebuilt.changelog_offset(), rebuilt.get(b"k000000")) == (None, None)
    rebuilt.close()
    assert not (tmp_path / "s.damaged").exists()


def test_a_store_another_worker_holds_is_a_lock_error_and_is_not_deleted(tmp_path: Path) -> None:
    _filled(tmp_path)
    holder = open_store("rocksdb", tmp_path, "s")
    with pytest.raises(StoreLockedError, match="it is open already .*own --state-dir"):
        open_store("rocksdb", tmp_path, "s")
    assert holder.changelog_offset() == 3 and holder.get(b"k000001") == b"v" * 100
    holder.close()


def test_a_failure_that_is_not_damage_is_raised_and_deletes_nothing(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("a file where the store's directory should be")
    with pytest.raises(StateStoreError) as raised:
        RocksDBStore(tmp_path, "s")
    assert not isinstance(raised.value, StoreCorruptedError)
    assert (tmp_path / "s").read_text().startswith("a file")


def test_open_removes_what_killed_removals_and_bulk_loads_left(tmp_path: Path) -> None:
    _filled(tmp_path)
    (tmp_path / "s.removing").mkdir()
    (tmp_path / "s.removing" / "000009.sst").write_bytes(b"x")
    (tmp_path / "s.restore-4000.sst").write_bytes(b"half an SST file")
    (tmp_path / "other.restore-1.sst").write_bytes(b"another store's")
    store = open_store("rocksdb", tmp_path, "s")
    assert store.changelog_offset() == 3
    store.wipe()
    assert store.changelog_offset() is None
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.restore-1.sst", "s"]


def _task_stores(directory: Path) -> TaskStores:
    """A task with two logged key-value stores, a and b."""
    sub = SubTopology(id=0, nodes=[], sources=[], sinks=[], stores=[StoreSpec("a"), StoreSpec("b")])
    return open_task_stores(sub, 0, directory, "rocksdb", "app")


def test_only_the_damaged_store_of_a_task_is_rebuilt(tmp_path: Path) -> None:
    _filled(tmp_path, "a")
    _filled(tmp_path, "b")
    (tmp_path / "b" / "CURRENT").unlink()
    stores = _task_stores(tmp_path)
    assert (stores["a"].store.changelog_offset(), stores["b"].store.changelog_offset()) == (3, None)
    stores.close()


def test_a_garbled_checkpoint_reports_no_state_and_keeps_the_stores(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """The checkpoint only tells the assignor how far a task is: the stores keep their own offsets."""
    task_dir = tmp_path / "0_0"
    task_dir.mkdir()
    stores = _task_stores(task_dir)
    stores["a"].store.write_batch([(b"x", b"1")], 5)
    write_checkpoint(task_dir, stores)
    stores.close()
    assert checkpointed_offsets(tmp_path, {0}) == {(0, 0): 5}
    for garbled in (b"", b"{\"app-a-changel", b"[1, 2]", os.urandom(40)):
        (task_dir / CHECKPOINT_FILE).write_bytes(garbled)
        with caplog.at_level(logging.WARNING, "streamer.state"):
            assert checkpointed_offsets(tmp_path, {0}) == {}
        assert f"unreadable checkpoint {task_dir / CHECKPOINT_FILE}" in caplog.text
    stores = _task_stores(task_dir)
    assert (stores["a"].store.changelog_offset(), stores["a"].get(b"x")) == (5, b"1")
    write_checkpoint(task_dir, stores)
    stores.close()
    assert orjson.loads((task_dir / CHECKPOINT_FILE).read_bytes()) == {"app-a-changelog": 5, "app-b-changelog": None}


def test_unused_task_directories_go_in_one_step_and_leftovers_after_a_kill_too(tmp_path: Path) -> None:
    _filled(tmp_path / "0_1", "a")
    (tmp_path / "0_2.removing" / "a").mkdir(parents=True)  # a removal a kill -9 interrupted
    assert remove_unused(tmp_path, set(), delay_s=0) == [(0, 1)]
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_is_written_only_once_what_it_claims_is_on_disk(tmp_path: Path) -> None:
    """The WAL is off: a kill -9 loses the memtables, so the checkpoint waits for a flush."""
    task_dir = tmp_path / "0_0"
    task_dir.mkdir()
    stores = _task_stores(task_dir)
    stores["a"].store.write_batch([(b"x", b"1")], 5)
    store = stores["a"].store
    assert isinstance(store, RocksDBStore)
    assert store._db.property_int_value("rocksdb.num-entries-active-mem-table") == 1
    write_checkpoint(task_dir, stores)
    assert store._db.property_int_value("rocksdb.num-entries-active-mem-table") == 0
    assert store._meta.property_int_value("rocksdb.num-entries-active-mem-table") == 0
    stores.close()


def test_a_checkpoint_of_stores_already_closed_is_written_from_what_their_close_flushed(tmp_path: Path) -> None:
    """A task the worker releases twice (closed when fenced, then again at a revocation) must not fail."""
    task_dir = tmp_path / "0_0"
    task_dir.mkdir()
    stores = _task_stores(task_dir)
    stores["a"].store.write_batch([(b"x", b"1")], 5)
    stores.close()
    write_checkpoint(task_dir, stores)
    assert checkpointed_offsets(tmp_path, {0}) == {(0, 0): 5}
