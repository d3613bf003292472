"""Sharing the DuckDB file with other processes: read-only opens, waiting for a held lock up to
the lock timeout, letting go of the file and taking it back, and the writer claim. The other
process is always a real one (DuckDB's locks are per process)."""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest

from anchorflow.errors import NoWarehouse, WarehouseError, WarehouseLocked
from anchorflow.warehouse.duckdb import DuckDBWarehouse
from anchorflow.warehouse.locking import WriterClaim
from tests.warehouse.holders import holding, let_go, peek

pytestmark = pytest.mark.integration


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A warehouse file holding raw.t (ids 0..9), closed."""
    file = tmp_path / "w.duckdb"
    with DuckDBWarehouse(file) as wh:
        wh.create_schema("raw")
        wh.execute("CREATE TABLE raw.t AS SELECT range AS id FROM range(10)")
    return file


def test_a_read_only_open_never_creates_the_file(tmp_path: Path) -> None:
    file = tmp_path / "nothing.duckdb"
    reader = DuckDBWarehouse(file, read_only=True, lazy=True)
    with pytest.raises(NoWarehouse, match=r"^no warehouse yet at .*nothing\.duckdb: run "):
        reader.scalar("SELECT 1")
    reader.close()
    assert list(tmp_path.iterdir()) == []


def test_two_readers_in_two_processes_share_the_file(path: Path) -> None:
    with holding(path, "read"), DuckDBWarehouse(path, read_only=True, lock_timeout=0) as reader:
        assert reader.scalar("SELECT sum(id) FROM raw.t") == 45
        with pytest.raises(WarehouseError, match="read-only"):
            reader.execute("INSERT INTO raw.t VALUES (10)")


def test_a_writer_that_waits_past_the_timeout_names_the_holder_and_its_program_only(
    path: Path,
) -> None:
    """The holder's other arguments may be secrets (a notebook server's token): never shown."""
    token = "--ServerApp.token=s3cr3t"
    with holding(path, "read", token) as holder, pytest.raises(WarehouseLocked) as failed:
        DuckDBWarehouse(path, lock_timeout=0.3)
    message = str(failed.value)
    assert "\n" not in message and "s3cr3t" not in message
    python = Path(sys.executable).name
    assert f" is in use by PID {holder.pid} ({python} -c); waited " in message
    assert re.search(r"; waited \d+(\.\d)?s \(warehouse\.lock_timeout is 0\.3s\): ", message)


def test_a_writer_waits_for_a_reader_that_lets_go(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    opened: list[DuckDBWarehouse] = []
    with holding(path, "read") as holder:
        caplog.set_level(logging.WARNING, logger="anchorflow.warehouse.locking")
        writer = threading.Thread(target=lambda: opened.append(DuckDBWarehouse(path)))
        writer.start()
        deadline = time.monotonic() + 30
        while not any("in use by" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline and writer.is_alive(), opened
            time.sleep(0.05)
        let_go(holder)
        writer.join(timeout=30)
    (wh,) = opened
    with wh:
        wh.execute("INSERT INTO raw.t VALUES (10)")
        assert wh.scalar("SELECT count(*) FROM raw.t") == 11


def test_a_released_writer_lets_a_reader_in_and_takes_the_file_back(path: Path) -> None:
    with DuckDBWarehouse(path) as wh:
        wh.execute("INSERT INTO raw.t VALUES (10)")
        wh.release()
        assert wh.released
        assert peek(path, "SELECT count(*) FROM raw.t") == "[(11,)]"  # another process reads
        assert wh.scalar("SELECT count(*) FROM raw.t") == 11  # opened again
        assert not wh.released
        assert peek(path, "SELECT count(*) FROM raw.t") == "IOException"  # and held again


def test_the_file_is_never_let_go_of_inside_a_transaction_or_with_workers(path: Path) -> None:
    with DuckDBWarehouse(path) as wh:
        with wh.transaction(), pytest.raises(WarehouseError, match="inside a transaction"):
            wh.release()
        worker = wh.worker()
        with pytest.raises(WarehouseError, match="workers"):
            wh.release()
        worker.close()
        wh.release()
        assert wh.released


def test_a_writer_that_let_go_of_the_file_keeps_other_writers_out(path: Path) -> None:
    """A run waiting on the network holds its writer claim: readers may come, writers wait."""
    with holding(path, "claim") as holder:
        with DuckDBWarehouse(path, read_only=True, lock_timeout=0) as reader:
            assert reader.scalar("SELECT count(*) FROM raw.t") == 10
        with pytest.raises(WarehouseLocked, match=rf"in use by PID {holder.pid} \(python"):
            DuckDBWarehouse(path, lock_timeout=0.2)
    with DuckDBWarehouse(path, lock_timeout=0) as wh:  # the claim went with its process
        assert wh.scalar("SELECT count(*) FROM raw.t") == 10
        assert path.with_name("w.duckdb.writer.lock").read_text() == f"{os.getpid()}\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["w.duckdb"]  # nothing left beside


def test_a_writer_in_a_directory_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match=r"^cannot open the DuckDB file .*w\.duckdb: No such"):
        DuckDBWarehouse(tmp_path / "missing" / "w.duckdb")
    assert list(tmp_path.iterdir()) == []


def test_a_second_open_in_the_same_process_names_this_process(path: Path) -> None:
    with DuckDBWarehouse(path) as first:
        first.scalar("SELECT 1")
        with pytest.raises(WarehouseLocked, match=rf"in use by this process \(PID {os.getpid()}\)"):
            DuckDBWarehouse(path, read_only=True, lock_timeout=0.1)


def test_a_second_writer_in_the_same_process_fails_at_once(path: Path) -> None:
    """This process cannot let go of what it holds while it waits: no use waiting."""
    with DuckDBWarehouse(path) as first:
        first.scalar("SELECT 1")
        started = time.monotonic()
        with pytest.raises(WarehouseLocked, match=rf"in use by this process \(PID {os.getpid()}\)"):
            DuckDBWarehouse(path, lock_timeout=60)
        assert time.monotonic() - started < 30


def test_a_writer_dropped_without_close_lets_go_of_its_claim(path: Path) -> None:
    wh = DuckDBWarehouse(path)
    wh.execute("INSERT INTO raw.t VALUES (10)")
    del wh
    gc.collect()
    with DuckDBWarehouse(path, lock_timeout=0) as again:
        assert again.scalar("SELECT count(*) FROM raw.t") == 11


def test_a_first_open_that_failed_claims_again_at_the_next(path: Path) -> None:
    failures = [RuntimeError("the journal could not be prepared")]

    def prepare(wh: DuckDBWarehouse) -> None:
        if failures:
            raise failures.pop()

    with DuckDBWarehouse(path, lazy=True, on_open=prepare) as wh:
        with pytest.raises(RuntimeError, match="could not be prepared"):
            wh.scalar("SELECT 1")
        assert wh.scalar("SELECT count(*) FROM raw.t") == 10
        with pytest.raises(WarehouseLocked, match="this process"):
            WriterClaim(path).acquire(0)


def test_the_waits_for_the_claim_and_for_the_file_share_one_deadline(path: Path) -> None:
    """The claim comes free late in the wait and a reader keeps the file: the writer gives up at
    the lock timeout, not a second lock timeout later."""
    timeout = 4.0
    with holding(path, "claim") as claimant, holding(path, "read") as reader:
        failed: list[BaseException] = []

        def open_writer() -> None:
            try:
                DuckDBWarehouse(path, lock_timeout=timeout).close()
            except WarehouseLocked as error:
                failed.append(error)

        started = time.monotonic()
        writer = threading.Thread(target=open_writer)
        writer.start()
        while time.monotonic() < started + 0.8 * timeout:
            time.sleep(0.05)
        let_go(claimant)
        writer.join(timeout=60)
        elapsed = time.monotonic() - started
    (error,) = failed
    assert f"in use by PID {reader.pid} (" in str(error)
    assert elapsed < timeout + 2
