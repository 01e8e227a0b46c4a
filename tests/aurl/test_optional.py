"""Optional dependencies: an absent one names its extra; a broken one keeps its own error."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from aurl.optional import import_optional


def test_an_installed_module_is_returned() -> None:
    assert import_optional("json", extra="word2vec") is json


def test_an_absent_package_names_the_extra_that_installs_it(
    uninstall: Callable[[str], None],
) -> None:
    uninstall("gensim")
    hint = re.escape("pip install 'aurl[word2vec]'")
    with pytest.raises(ModuleNotFoundError, match=hint) as info:
        import_optional("gensim.models", extra="word2vec")
    assert info.value.name == "gensim"
    assert "gensim is not installed" in str(info.value)


def test_a_module_missing_inside_an_installed_package_keeps_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "half_installed").mkdir()
    (tmp_path / "half_installed" / "__init__.py").write_text("import its_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="its_missing_dependency") as info:
        import_optional("half_installed", extra="bench")
    assert info.value.name == "its_missing_dependency"
    assert "aurl[" not in str(info.value)
