"""Shard plans: each shard read alone from its pieces (byte offsets, Parquet rows) equals the
same shard of the streamed corpus, for every format, across file boundaries."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedserve.jobs.plan import plan_shards, read_shard
from embedserve.jobs.readers import Fields, InputError, expand_inputs, read_records
from embedserve.jobs.run import shards


def write_corpus(folder: Path) -> list[str]:
    (folder / "a.txt").write_bytes("één\n\nthree\r\nfo\rur\nlast without newline".encode())
    rows = [{"text": f"json {i} ☃", "n": i} for i in range(7)]
    body = "".join(
        json.dumps(row, ensure_ascii=False) + "\n" + ("\n" if i % 3 == 0 else "")
        for i, row in enumerate(rows)
    )
    (folder / "b.jsonl").write_text(body)
    (folder / "c.csv").write_text('text,n\n"multi\nline, quoted",1\nplain,2\n"x ""y""",3\n')
    table = pa.table({"text": [f"pq {i}" for i in range(11)], "n": list(range(11))})
    pq.write_table(table, folder / "d.parquet", row_group_size=4)
    return [str(folder / name) for name in ("a.txt", "b.jsonl", "c.csv", "d.parquet")]


@pytest.mark.parametrize("size", [1, 3, 4, 7, 100])
def test_each_planned_shard_equals_the_streamed_one(tmp_path: Path, size: int) -> None:
    every = expand_inputs(write_corpus(tmp_path))
    structured = every[1:]  # the formats with fields to keep
    for inputs, fields in ((every, Fields()), (structured, Fields(keep=("n",)))):
        streamed = list(shards(read_records(inputs, fields), size))
        plans = plan_shards(inputs, size)
        assert [plan.count for plan in plans] == [len(shard) for shard in streamed]
        assert [read_shard(plan, fields) for plan in reversed(plans)] == streamed[::-1]
    assert sum(len(shard) for shard in streamed) == 7 + 3 + 11


def test_stdin_cannot_be_planned() -> None:
    with pytest.raises(InputError, match="stdin"):
        plan_shards(["-"], 10)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.jsonl", '{"text": "a"}\n\n\n{"text": "b"}\n\n{"text": 1}\n', r"x.jsonl:6: a int"),
        ("x.jsonl", '{"text": "a"}\n\n{"text": "b"}\n\nnot json\n', r"x.jsonl:5: not JSON"),
        ("x.csv", 'text,n\n"a\nb",1\nc,2\nd\n', r"x.csv:5: no `n` id"),
    ],
)
def test_a_shard_read_alone_names_the_same_record_as_the_stream(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    """The bad record is in the last shard: read alone, its error names the same line."""
    (tmp_path / name).write_text(content)
    fields = Fields(id="n") if name.endswith(".csv") else Fields()
    with pytest.raises(InputError, match=message):
        list(read_records([str(tmp_path / name)], fields))
    *_, last = plan_shards([str(tmp_path / name)], 2)
    with pytest.raises(InputError, match=message):
        read_shard(last, fields)
