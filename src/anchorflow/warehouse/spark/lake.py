"""The lake: the Parquet files of the layers' tables, in one directory, and how a write reaches
it whole or not at all.

Layout (Hive-style, so any Parquet reader sees the tables):

    <lake>/<schema>/<table>/load_id=<n>/<txn>-<write>-<k>.parquet   a table with a load_id column
    <lake>/<schema>/<table>/<txn>-<write>-<k>.parquet               a table without (a mart)
    <lake>/_txn/<txn>/<write>/...                                   a transaction's writes, hidden

A write inside a transaction goes under `_txn/<txn>/` (hidden from readers: names that start
with `_` are skipped by Spark, Hive and Arrow). At commit the partition directories are renamed
into place (a new partition is one `rename`; into an existing partition each file is), and only
then does the journal commit the manifest (`journal.lake`) that makes them part of the table.
A crash before the renames leaves `_txn/` behind; a crash between the renames and the journal's
commit leaves files the manifest does not list. Both are debris: `remove_debris` deletes them
when the writer next opens the lake, before anything reads or writes it. Files whose rows a
transaction deleted leave the manifest in that transaction and the disk after its commit (a
crash in between leaves unlisted files: debris again).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from anchorflow.durable import fsync_directory

TXN_DIR = "_txn"
PARTITION = "load_id"


@dataclass(frozen=True)
class LakeFile:
    """A file of a table: its partition (None: the table has none), its path relative to the
    lake, and its rows."""

    load_id: int | None
    path: str
    rows: int


@dataclass
class Pending:
    """What one transaction wrote and removed, not committed yet."""

    txn: str
    writes: int = 0
    # final relative path -> where the file is now (under _txn/)
    moves: dict[str, Path] = field(default_factory=dict)
    # partition directories written whole by this transaction: final -> staged
    new_partitions: dict[str, Path] = field(default_factory=dict)
    doomed: list[str] = field(default_factory=list)  # files to delete after the commit
    moved: list[str] = field(default_factory=list)  # final paths renamed into place so far
    temps: set[str] = field(default_factory=set)  # temporary tables made in the transaction


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = root
        # Bumped by each change a connection of this process commits: the others (workers)
        # read the lake's catalog again at their next statement.
        self.generation = 0

    def table_dir(self, schema: str, name: str) -> Path:
        return self.root / schema / name

    def staging_dir(self, pending: Pending) -> Path:
        pending.writes += 1
        return self.root / TXN_DIR / pending.txn / str(pending.writes)

    def adopt(
        self, pending: Pending, staged: Path, schema: str, name: str, partitioned: bool
    ) -> list[LakeFile]:
        """The Parquet files Spark (or Arrow) wrote under `staged`, named for their place in
        the table and recorded as pending moves; returns them as the table will list them."""
        for checksum in staged.rglob(".*.crc"):  # Hadoop's local checksums: not data
            checksum.unlink()
        files: list[LakeFile] = []
        stem = f"{pending.txn}-{pending.writes}"
        prefix = f"{PARTITION}="
        for directory in sorted({p.parent for p in staged.rglob("*.parquet")}):
            load_id = None
            relative_dir = Path(schema) / name
            if partitioned:
                part = directory.name
                if not part.startswith(prefix) or not part[len(prefix) :].lstrip("-").isdigit():
                    raise ValueError(f"a row without a load id reached {schema}.{name}")
                load_id = int(part[len(prefix) :])
                relative_dir = relative_dir / part
            for k, source in enumerate(sorted(directory.glob("*.parquet"))):
                target = directory / f"{stem}-{k}.parquet"
                source.rename(target)
                relative = str(relative_dir / target.name)
                pending.moves[relative] = target
                files.append(LakeFile(load_id, relative, pq.read_metadata(target).num_rows))
            final_dir = str(relative_dir)
            if partitioned and not (self.root / final_dir).exists():
                pending.new_partitions.setdefault(final_dir, directory)
        return files

    def where(self, pending: Pending | None, relative: str) -> Path:
        """Where a listed file is now: staged when the open transaction wrote it."""
        if pending is not None and relative in pending.moves:
            return pending.moves[relative]
        return self.root / relative

    def move_into_place(self, pending: Pending) -> None:
        """Rename the transaction's files into the tables: a partition that did not exist is
        renamed whole; files joining a partition that exists are renamed one by one."""
        done: set[str] = set()
        for final_dir, staged in pending.new_partitions.items():
            target = self.root / final_dir
            if target.exists() or not staged.exists():
                continue
            inside = {r for r, p in pending.moves.items() if p.parent == staged}
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.rename(target)
            fsync_directory(target.parent)
            pending.moved.append(final_dir)
            done |= inside
        for relative, staged in pending.moves.items():
            if relative in done:
                continue
            target = self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.rename(target)
            fsync_directory(target.parent)
            pending.moved.append(relative)

    def undo(self, pending: Pending) -> None:
        """A rolled-back transaction: its staged writes and anything already renamed go."""
        for relative in pending.moved:
            target = self.root / relative
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        shutil.rmtree(self.root / TXN_DIR / pending.txn, ignore_errors=True)

    def finish(self, pending: Pending) -> None:
        """After the journal committed: delete the files the transaction removed, and its
        staging directory."""
        for relative in pending.doomed:
            (self.root / relative).unlink(missing_ok=True)
            _remove_empty_parents(self.root / relative, self.root)
        shutil.rmtree(self.root / TXN_DIR / pending.txn, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(self.root / TXN_DIR)  # when no other transaction stages there

    def remove_debris(self, listed: set[str]) -> list[str]:
        """Delete what no committed transaction holds: staging directories of transactions
        that never committed, and Parquet files the manifest does not list. Returns them."""
        removed: list[str] = []
        staging = self.root / TXN_DIR
        if staging.exists():
            removed += [str(p.relative_to(self.root)) for p in staging.iterdir()]
            shutil.rmtree(staging, ignore_errors=True)
        if not self.root.exists():
            return removed
        for path in sorted(self.root.rglob("*.parquet")):
            relative = str(path.relative_to(self.root))
            if relative not in listed:
                path.unlink(missing_ok=True)
                _remove_empty_parents(path, self.root)
                removed.append(relative)
        return removed


def _remove_empty_parents(path: Path, root: Path) -> None:
    """Remove the partition directory of a deleted file once it is empty (not the table's)."""
    parent = path.parent
    if parent.name.startswith(f"{PARTITION}=") and parent.is_relative_to(root):
        with contextlib.suppress(OSError):
            os.rmdir(parent)
