"""The records of a corpus, streamed in input order from text, JSONL, CSV or Parquet files (or a
text stream on stdin), so that the same inputs always give the same sequence of records."""

from __future__ import annotations

import csv
import glob
import io
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

FORMATS = {".txt": "text", ".text": "text", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FORMATS |= {".csv": "csv", ".parquet": "parquet"}
PARQUET_BATCH_ROWS = 4096
LINE_END = "\n"  # text lines end at \n only (a trailing \r is dropped; a lone \r is text)


class InputError(ValueError):
    """A corpus file that cannot be read as asked; the message says where and what to change."""


@dataclass(frozen=True)
class Record:
    """One text to embed, its id, and the fields to carry into the output."""

    id: str
    text: str
    kept: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fields:
    """Where the text, the id and the kept fields are in a structured record."""

    text: str = "text"
    id: str | None = None  # None: the record's position in the whole corpus
    keep: tuple[str, ...] = ()


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Each input as files, in a stable order: `-` (stdin), a file, a directory of Parquet
    files, or a glob."""
    found: list[str] = []
    for given in inputs:
        path = Path(given).expanduser()
        if given == "-":
            found.append(given)
        elif path.is_dir():
            found += sorted(str(p) for p in path.rglob("*.parquet"))
        elif path.is_file():
            found.append(str(path))
        elif matches := sorted(glob.glob(str(path), recursive=True)):
            found += matches
        else:
            raise InputError(f"{given}: no such file, directory or glob match")
    if not found:
        raise InputError(f"no input files in {', '.join(inputs)}")
    return found


def format_of(name: str) -> str:
    """`text`, `jsonl`, `csv` or `parquet`, from the file's suffix (stdin: text)."""
    if name == "-":
        return "text"
    kind = FORMATS.get(Path(name).suffix.lower())
    if kind is None:
        raise InputError(
            f"{name}: unknown input format; use .txt (one text per line), .jsonl, .csv or .parquet"
        )
    return kind


def read_records(inputs: Sequence[str], fields: Fields) -> Iterator[Record]:
    """Every record of `inputs` (already expanded), in order; ids from `fields.id`, else the
    position in the whole corpus."""
    position = 0
    for name in inputs:
        try:
            for where, row in _rows(name, fields):
                yield make_record(name, where, row, fields, position)
                position += 1
        except UnicodeDecodeError as exc:
            raise InputError(f"{name}: not UTF-8 text ({exc}); convert it first") from None


def _rows(name: str, fields: Fields) -> Iterator[tuple[int, dict[str, Any]]]:
    kind = format_of(name)
    if kind == "parquet":
        yield from _parquet_rows(name, fields)
        return
    if name == "-":
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline=LINE_END)
        yield from _text_rows(stream, fields)
        return
    newline = LINE_END if kind == "text" else ""  # csv parses its own line ends
    with open(name, encoding="utf-8", newline=newline) as handle:
        if kind == "text":
            yield from _text_rows(handle, fields)
        elif kind == "jsonl":
            yield from _jsonl_rows(name, handle)
        else:
            yield from enumerate(csv.DictReader(handle), start=2)  # line 1: the header


def _text_rows(handle: io.TextIOBase, fields: Fields) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_number, line in enumerate(handle, start=1):
        yield line_number, {fields.text: line.rstrip("\r\n")}


def _jsonl_rows(name: str, handle: io.TextIOBase) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_number, line in enumerate(handle, start=1):
        if line.strip():  # blank lines separate nothing in JSONL
            yield line_number, parse_jsonl(name, line_number, line)


def parse_jsonl(name: str, line_number: int, line: str) -> dict[str, Any]:
    """One JSONL line as an object, or an error naming the file and line."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{name}:{line_number}: not JSON ({exc})") from None
    if not isinstance(row, dict):
        raise InputError(f"{name}:{line_number}: expected a JSON object per line")
    return row


def _parquet_rows(name: str, fields: Fields) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    wanted = [fields.text, *([fields.id] if fields.id else []), *fields.keep]
    parquet = pq.ParquetFile(name)
    missing = [column for column in wanted if column not in parquet.schema_arrow.names]
    if missing:
        raise InputError(
            f"{name}: no column {', '.join(missing)} (columns: "
            f"{', '.join(parquet.schema_arrow.names)}); choose them with --text-field, "
            "--id-field and --keep-fields"
        )
    row_number = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
        for row in batch.to_pylist():
            row_number += 1
            yield row_number, row


def make_record(
    name: str, where: int, row: dict[str, Any], fields: Fields, position: int
) -> Record:
    """The record of `row` (record `where` of file `name`, `position` in the corpus)."""
    text = row.get(fields.text)
    if not isinstance(text, str):
        found = "no" if text is None else f"a {type(text).__name__}"
        raise InputError(
            f"{name} (record {where}): {found} `{fields.text}` text; every record needs one "
            "(choose the field with --text-field)"
        )
    if fields.id is None:
        record_id = str(position)
    elif (value := row.get(fields.id)) is None:
        raise InputError(f"{name} (record {where}): no `{fields.id}` id (--id-field)")
    else:
        record_id = str(value)
    missing = [key for key in fields.keep if key not in row]
    if missing:
        raise InputError(f"{name} (record {where}): no {', '.join(missing)} (--keep-fields)")
    return Record(record_id, text, {key: row[key] for key in fields.keep})


def count_records(inputs: Sequence[str]) -> int | None:
    """How many records `inputs` hold, for the progress bar: Parquet metadata, text lines, one
    quick parsing pass over JSONL and CSV; None for stdin."""
    total = 0
    for name in inputs:
        if name == "-":
            return None
        kind = format_of(name)
        if kind == "parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(name).metadata.num_rows
        elif kind == "text":
            with open(name, encoding="utf-8", newline=LINE_END) as handle:
                total += sum(1 for _ in handle)
        else:
            total += sum(1 for _ in _rows(name, Fields()))
    return total
