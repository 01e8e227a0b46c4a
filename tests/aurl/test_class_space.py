"""The class space a datamodule hands to the module: its checks."""

from __future__ import annotations

import pytest

from aurl.class_space import ClassSpace, EvalSet


def test_eval_set_validation() -> None:
    EvalSet("ok", ["a", "b"], [[1]], [True, False])
    with pytest.raises(ValueError, match="duplicate"):
        EvalSet("dup", ["a", "a"])
    with pytest.raises(ValueError, match="seen_mask"):
        EvalSet("mask", ["a", "b"], seen_mask=[True])
    with pytest.raises(ValueError, match="half split"):
        EvalSet("split", ["a", "b"], half_splits=[[2]])
    with pytest.raises(ValueError, match="attribute 'colour' has 1 values for 2 classes"):
        EvalSet("attr", ["a", "b"], attributes={"colour": ["red"]})
    with pytest.raises(ValueError, match="calibration set needs a seen_mask"):
        EvalSet("cal", ["a", "b"], calibration=True)


def test_class_space_validation() -> None:
    space = ClassSpace(["run", "jump"], ["swim"], [EvalSet("t", ["ski", "row"])])
    assert space.train_classes == ["run", "jump"] and space.test_sets[0].name == "t"
    assert ClassSpace(["run"]).val_classes == [] and ClassSpace(["run"]).test_sets == []
    with pytest.raises(ValueError, match="at least one training class"):
        ClassSpace([])
    with pytest.raises(ValueError, match=r"training classes has duplicate class names: \['run'\]"):
        ClassSpace(["run", "run"])
    with pytest.raises(ValueError, match=r"both trained and validated on: \['run'\]"):
        ClassSpace(["run", "jump"], ["run"])
    with pytest.raises(ValueError, match="distinct names"):
        ClassSpace(["run"], [], [EvalSet("t", ["a"]), EvalSet("t", ["b"])])
