"""docs/configuration.md holds the tables generated from the declarations; drift fails here."""

from __future__ import annotations

from pathlib import Path

from embedserve.settings import serve_options
from embedserve.settings.docs import main, models_file_table, render, serve_table
from embedserve.settings.models_file import ENTRY_KEYS

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_configuration_doc_is_generated_from_the_declarations() -> None:
    current = DOC.read_text(encoding="utf-8")
    assert render(current) == current, "run: python -m embedserve.settings.docs"
    assert main(["--check", str(DOC)]) == 0


def test_every_flag_and_variable_is_in_the_table() -> None:
    table = serve_table()
    for option in serve_options():
        for flag in option.flags:
            assert f"`{flag}" in table, flag
        assert f"`{option.env_var}`" in table


def test_every_models_file_key_is_in_the_table() -> None:
    table = models_file_table()
    for key in ENTRY_KEYS:
        assert f"| `{key}` |" in table, key


def test_a_drifted_doc_is_detected(tmp_path: Path) -> None:
    drifted = tmp_path / "configuration.md"
    drifted.write_text(
        DOC.read_text(encoding="utf-8").replace("| `--port` |", "| `--porty` |"), encoding="utf-8"
    )
    assert main(["--check", str(drifted)]) == 1
    assert main([str(drifted)]) == 0  # rewrites it
    assert main(["--check", str(drifted)]) == 0
