from __future__ import annotations

import pytest

from aurl.registry import Registry


def test_register_create_and_list() -> None:
    registry: Registry[tuple] = Registry("widget")

    @registry.register("pair")
    def make_pair(a: int, b: int = 2) -> tuple:
        return (a, b)

    assert registry.names() == ["pair"]
    assert "pair" in registry and "other" not in registry
    assert registry.create("pair", a=1) == (1, 2)


def test_unknown_name_lists_available() -> None:
    registry: Registry[int] = Registry("widget")
    registry.register("one")(lambda: 1)
    with pytest.raises(KeyError, match="unknown widget 'two'; available: one"):
        registry.create("two")


def test_duplicate_registration_is_an_error() -> None:
    registry: Registry[int] = Registry("widget")
    registry.register("one")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("one")(lambda: 2)
