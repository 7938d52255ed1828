"""The records of a corpus, streamed in input order from text, JSONL, CSV or Parquet files (or a
text stream on stdin), so that the same inputs always give the same sequence of records."""

from __future__ import annotations

import csv
import glob
import io
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
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
    if name == "-":
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline=LINE_END)
        yield from _text_rows(stream, fields, 1)
        return
    yield from file_rows(name, fields)


def file_rows(
    name: str, fields: Fields, start: int = 0, count: int | None = None, first: int | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(number, row) of the file's records: all of them, or `count` from `start` (a byte offset
    of a record in a text, JSONL or CSV file, a row in a Parquet file; `first` is its line or
    row number, for error messages)."""
    kind = format_of(name)
    if kind == "parquet":
        yield from _parquet_rows(name, fields, start, count)
        return
    with open(name, "rb") as raw:
        header = raw.readline().decode("utf-8") if kind == "csv" else ""
        if start:
            raw.seek(start)
        newline = LINE_END if kind == "text" else ""  # csv and JSON parse their own line ends
        text = io.TextIOWrapper(raw, encoding="utf-8", newline=newline)
        if kind == "text":
            rows = _text_rows(text, fields, first or 1)
        elif kind == "jsonl":
            rows = _jsonl_rows(name, text, first or 1)
        else:
            names = next(csv.reader([header]), [])
            rows = _csv_rows(csv.DictReader(text, fieldnames=names), first or 2)
        yield from islice(rows, count)


def _text_rows(
    handle: io.TextIOBase, fields: Fields, first: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_number, line in enumerate(handle, start=first):
        yield line_number, {fields.text: line.rstrip("\r\n")}


def _jsonl_rows(
    name: str, handle: io.TextIOBase, first: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_number, line in enumerate(handle, start=first):
        if line.strip():  # blank lines separate nothing in JSONL
            yield line_number, parse_jsonl(name, line_number, line)


def _csv_rows(reader: csv.DictReader[str], first: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each record with the number of the line it starts on (a quoted field may span lines)."""
    start = first
    for row in reader:
        yield start, row
        start = first + reader.line_num


def parse_jsonl(name: str, line_number: int, line: str) -> dict[str, Any]:
    """One JSONL line as an object, or an error naming the file and line."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{name}:{line_number}: not JSON ({exc})") from None
    if not isinstance(row, dict):
        raise InputError(f"{name}:{line_number}: expected a JSON object per line")
    return row


def _parquet_rows(
    name: str, fields: Fields, start: int, count: int | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows `start` to `start + count` (all by default), reading only the row groups they span."""
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
    end = parquet.metadata.num_rows if count is None else start + count
    groups: list[int] = []
    first_row = row = 0
    for group in range(parquet.metadata.num_row_groups):
        rows = parquet.metadata.row_group(group).num_rows
        if row + rows > start and row < end:
            first_row = row if not groups else first_row
            groups.append(group)
        row += rows
    if not groups:  # an empty file, or a range past its end
        return
    batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=groups, columns=wanted)
    found = (row for batch in batches for row in batch.to_pylist())
    numbered = enumerate(found, start=first_row + 1)
    yield from islice(numbered, start - first_row, end - first_row)


def make_record(
    name: str, where: int, row: dict[str, Any], fields: Fields, position: int
) -> Record:
    """The record of `row` (at line or Parquet row `where` of file `name`, `position` in the
    corpus)."""
    text = row.get(fields.text)
    if not isinstance(text, str):
        found = "no" if text is None else f"a {type(text).__name__}"
        raise InputError(
            f"{_place(name, where)}: {found} `{fields.text}` text; every record needs one "
            "(choose the field with --text-field)"
        )
    if fields.id is None:
        record_id = str(position)
    elif (value := row.get(fields.id)) is None:
        raise InputError(f"{_place(name, where)}: no `{fields.id}` id (--id-field)")
    else:
        record_id = str(value)
    missing = [key for key in fields.keep if key not in row]
    if missing:
        raise InputError(f"{_place(name, where)}: no {', '.join(missing)} (--keep-fields)")
    return Record(record_id, text, {key: row[key] for key in fields.keep})


def _place(name: str, where: int) -> str:
    return f"{name} (row {where})" if format_of(name) == "parquet" else f"{name}:{where}"


def count_records(inputs: Sequence[str]) -> int | None:
    """How many records `inputs` hold, for the progress bar: Parquet metadata, text lines,
    non-blank JSONL lines (not parsed), one pass of the CSV parser; None for stdin."""
    total = 0
    for name in inputs:
        if name == "-":
            return None
        kind = format_of(name)
        if kind == "parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(name).metadata.num_rows
        elif kind == "csv":  # records may span lines: the parser counts them
            with open(name, encoding="utf-8", newline="") as handle:
                rows = csv.reader(handle)
                next(rows, None)  # the header
                total += sum(1 for row in rows if row)
        else:  # a line per text; a non-blank line per JSONL record (parsed when read)
            with open(name, "rb") as handle:
                total += sum(1 for line in handle if kind == "text" or line.strip())
    return total
