"""API keys from flags, variables and key files: fail closed on anything empty or malformed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.settings.build import build


def test_api_keys_from_flag_and_file_are_combined(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# team keys\nfile-key-1\n\n  file-key-2  \n", encoding="utf-8")
    settings = build(api_keys=["flag-key"], api_key_file=str(key_file))
    assert settings.api_keys == ("flag-key", "file-key-1", "file-key-2")
    only_file = build(api_key_file=str(key_file))
    assert only_file.api_keys == ("file-key-1", "file-key-2")


def test_missing_api_key_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--api-key-file .*absent\.txt"):
        build(api_key_file=str(tmp_path / "absent.txt"))


@pytest.mark.parametrize("keys", [[""], ["  "], ["good", ""]])
def test_empty_api_keys_refuse_to_start(keys: list[str]) -> None:
    with pytest.raises(ValueError, match=r"empty.*refusing to start"):
        build(api_keys=keys)


def test_empty_api_key_variable_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="empty"):
        build({"EMBEDSERVE_API_KEY": ""})
    with pytest.raises(ValueError, match="empty"):
        build({"EMBEDSERVE_API_KEY": "a,,b"})


def test_empty_key_file_variable_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="set but empty"):
        build({"EMBEDSERVE_API_KEY_FILE": ""})


def test_key_file_without_keys_refuses_to_start(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# keys go here\n\n   \n# none yet\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no keys"):
        build(api_key_file=str(key_file))


def test_keys_with_spaces_are_refused() -> None:
    with pytest.raises(ValueError, match="one printable word"):
        build(api_keys=["two words"])


def test_indented_comment_in_api_key_file_is_not_a_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("real-key\n   # a comment\n", encoding="utf-8")
    settings = build(api_key_file=str(key_file))
    assert settings.api_keys == ("real-key",)
