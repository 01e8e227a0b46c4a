from __future__ import annotations

from pathlib import Path

import pytest

from aurl.paths import expand_path, read_json_object


def test_expands_variables_and_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURL_TEST_ROOT", "/data/k700")
    monkeypatch.setenv("HOME", "/home/someone")
    assert expand_path("${AURL_TEST_ROOT}/train", "root") == Path("/data/k700/train")
    assert expand_path("$AURL_TEST_ROOT", "root") == Path("/data/k700")
    assert expand_path("~/vectors.bin", "path") == Path("/home/someone/vectors.bin")
    assert expand_path(Path("plain/relative"), "root") == Path("plain/relative")


def test_unset_variable_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AURL_MISSING_ROOT", raising=False)
    with pytest.raises(
        ValueError,
        match=r"Kinetics700.root: environment variable "
        r"AURL_MISSING_ROOT is not set",
    ):
        expand_path("${AURL_MISSING_ROOT}/train", "Kinetics700.root")


def test_read_json_object_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text('{"settings": {"short_side": 128}}')
    assert read_json_object(path) == {"settings": {"short_side": 128}}
    path.write_text('{\n  "settings": oops\n}')
    with pytest.raises(ValueError, match=r"manifest\.json: not valid JSON \(line 2\)"):
        read_json_object(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"manifest\.json: expected a JSON object"):
        read_json_object(path)
