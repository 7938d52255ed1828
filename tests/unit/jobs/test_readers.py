"""Corpus readers: each format in input order, ids by position across files or from a field,
kept fields, clear errors naming file and record, and the record count for the progress bar."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedserve.jobs.readers import (
    Fields,
    InputError,
    count_records,
    expand_inputs,
    read_records,
)


def texts_and_ids(inputs: list[str]) -> list[tuple[str, str]]:
    return [(r.id, r.text) for r in read_records(expand_inputs(inputs), Fields())]


def test_text_lines_jsonl_and_csv_in_order_with_position_ids(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("first\n\nthird, with a comma\r\nlast, unterminated")
    rows = [{"text": "j1", "n": 1}, {"text": "j2", "n": 2}]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "c.csv").write_text('text,n\n"a, quoted\nmultiline text",3\nplain,4\n')
    inputs = [str(tmp_path / name) for name in ("a.txt", "b.jsonl", "c.csv")]
    assert texts_and_ids(inputs) == [
        ("0", "first"),
        ("1", ""),  # kept: the job skips and counts empty texts, the reader does not drop them
        ("2", "third, with a comma"),
        ("3", "last, unterminated"),
        ("4", "j1"),
        ("5", "j2"),
        ("6", "a, quoted\nmultiline text"),
        ("7", "plain"),
    ]
    assert count_records(inputs) == 8


def test_parquet_file_directory_and_glob_with_id_and_kept_fields(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for part in range(2):
        table = pa.table(
            {"body": [f"t{part}{i}" for i in range(3)], "key": [10 * part + i for i in range(3)]}
        )
        pq.write_table(table, folder / f"part-{part}.parquet")
    fields = Fields(text="body", id="key", keep=("key",))
    by_dir = list(read_records(expand_inputs([str(folder)]), fields))
    by_glob = list(read_records(expand_inputs([str(folder / "*.parquet")]), fields))
    assert by_dir == by_glob
    assert [(r.id, r.text, r.kept) for r in by_dir[2:4]] == [
        ("2", "t02", {"key": 2}),
        ("10", "t10", {"key": 10}),
    ]
    assert count_records(expand_inputs([str(folder)])) == 6


@pytest.mark.parametrize(
    ("name", "content", "fields", "message"),
    [
        ("x.jsonl", '{"text": "a"}\nnot json\n', Fields(), r"x.jsonl:2: not JSON"),
        ("x.jsonl", '["a list"]\n', Fields(), r"x.jsonl:1: expected a JSON object"),
        ("x.jsonl", '{"body": "a"}\n', Fields(), r"no `text` text.*--text-field"),
        ("x.jsonl", '{"text": 5}\n', Fields(), r"a int `text` text"),
        ("x.jsonl", '{"text": "a"}\n', Fields(id="doc"), r"no `doc` id"),
        ("x.csv", "text\na\n", Fields(keep=("lang",)), r"x.csv:2: no lang"),
        ("x.xml", "<a/>", Fields(), r"unknown input format"),
    ],
)
def test_errors_name_the_file_and_record(
    tmp_path: Path, name: str, content: str, fields: Fields, message: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=message):
        list(read_records(expand_inputs([str(tmp_path / name)]), fields))


def test_missing_inputs_and_parquet_columns_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([str(tmp_path / "absent.txt")])
    pq.write_table(pa.table({"body": ["a"]}), tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"no column text \(columns: body\)"):
        list(read_records([str(tmp_path / "t.parquet")], Fields()))


def test_text_lines_end_at_newline_only(tmp_path: Path) -> None:
    """`\\r\\n` ends a line like `\\n`; a lone `\\r` is part of the text (as the plan reads it)."""
    (tmp_path / "r.txt").write_bytes(b"a\r\nb\rc\nd")
    assert texts_and_ids([str(tmp_path / "r.txt")]) == [("0", "a"), ("1", "b\rc"), ("2", "d")]
    assert count_records([str(tmp_path / "r.txt")]) == 3


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.txt: not UTF-8 text"):
        texts_and_ids([str(tmp_path / "latin1.txt")])
