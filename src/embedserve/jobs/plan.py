"""Where each shard's records are, found in one pass over the inputs, so that a worker elsewhere
(a Ray actor) reads its shard alone: byte offsets into text, JSONL and CSV files, row offsets
into Parquet files. The shards are the local job's (records cut in input order)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from embedserve.jobs.readers import Fields, InputError, Record, file_rows, format_of, make_record


@dataclass(frozen=True)
class Piece:
    """`count` consecutive records of one file, from byte offset (or Parquet row) `start`;
    `first` is the first one's record number in the file (for error messages)."""

    name: str
    start: int
    count: int
    first: int


@dataclass(frozen=True)
class ShardPlan:
    """Shard `index`: its records' pieces, the first one's position in the corpus."""

    index: int
    position: int
    pieces: tuple[Piece, ...]

    @property
    def count(self) -> int:
        return sum(piece.count for piece in self.pieces)


def plan_shards(inputs: Sequence[str], shard_size: int) -> list[ShardPlan]:
    """The shards of `inputs` (files only: stdin cannot be read twice)."""
    plans: list[ShardPlan] = []
    pieces: list[Piece] = []
    position = taken = 0
    for name in inputs:
        if name == "-":
            raise InputError("a Ray job reads files; stdin cannot be split among workers")
        starts = _record_starts(name)
        while True:
            chunk = list(islice(starts, shard_size - taken))
            if not chunk:
                break
            pieces.append(Piece(name, chunk[0][0], len(chunk), chunk[0][1]))
            taken += len(chunk)
            if taken == shard_size:
                plans.append(ShardPlan(len(plans), position, tuple(pieces)))
                position, pieces, taken = position + taken, [], 0
    if pieces:
        plans.append(ShardPlan(len(plans), position, tuple(pieces)))
    return plans


def _record_starts(name: str) -> Iterator[tuple[int, int]]:
    """(offset, record number) of every record of the file."""
    kind = format_of(name)
    if kind == "parquet":
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(name).metadata.num_rows
        yield from ((row, row + 1) for row in range(rows))
        return
    with open(name, "rb") as handle:
        offset, number = 0, 0
        if kind == "csv":
            header = handle.readline()
            offset, number = len(header), 1
            yield from _csv_starts(handle, offset, number)
            return
        for line in handle:
            number += 1
            if kind == "text" or line.strip():
                yield offset, number
            offset += len(line)


def _csv_starts(handle: io.BufferedReader, offset: int, number: int) -> Iterator[tuple[int, int]]:
    """CSV records may span lines: feed physical lines to the parser, note where each record
    began (the parser reads no further than the end of the record it returns)."""
    consumed = [offset, number]

    def lines() -> Iterator[str]:
        for raw in handle:
            consumed[0] += len(raw)
            consumed[1] += 1
            yield raw.decode("utf-8")

    start = tuple(consumed)
    for _ in csv.reader(lines()):
        yield start[0], start[1] + 1  # the record's first line
        start = tuple(consumed)


def read_shard(plan: ShardPlan, fields: Fields) -> list[Record]:
    """The records of one shard, read from its pieces alone."""
    records: list[Record] = []
    for piece in plan.pieces:
        rows = file_rows(piece.name, fields, piece.start, piece.count, piece.first)
        for number, row in rows:
            records.append(
                make_record(piece.name, number, row, fields, plan.position + len(records))
            )
    return records
