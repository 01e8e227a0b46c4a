"""The class space of a zero-shot run: which class names are trained, validated and tested.

A datamodule builds one :class:`ClassSpace` in its ``setup`` (``ZeroShotDataModule.class_space``)
and :class:`aurl.module.AURLModule` receives it through ``set_class_space``; the labels of the
train, val and each test dataloader index ``train_classes``, ``val_classes`` and
``test_sets[i].class_names``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EvalSet:
    """What the LightningModule needs to score one evaluation dataloader.

    Attributes:
        name: the set's name, used as the metric prefix (``test/ucf101/top1``).
        class_names: candidate class names; the dataloader's labels index this list.
        half_splits: the seeded 50% class subsets as indices into ``class_names`` (one list per
            split), or None when only the full class set is evaluated.
        seen_mask: for a generalised zero-shot set, ``seen_mask[i]`` is True when class ``i`` was
            a training class (``class_names`` then holds seen + unseen candidates); else None.
        report_full: whether the full class set is reported too (False for protocol "half").
        calibration: a generalised set of *validation* data (held-out videos of training
            classes as seen, validation classes as unseen) that chooses the calibrated-stacking
            offset of the other generalised sets; never a test score.
        attributes: for classes composed of named attributes (SyntheticActions' colour,
            shape and motion), each attribute's value for every class, aligned with
            ``class_names``; the module then reports per-attribute accuracy of the top-1.
    """

    name: str
    class_names: list[str]
    half_splits: list[list[int]] | None = None
    seen_mask: list[bool] | None = None
    report_full: bool = True
    calibration: bool = False
    attributes: dict[str, list[str]] | None = None

    def __post_init__(self) -> None:
        _check_distinct(self.class_names, f"eval set {self.name!r}")
        n = len(self.class_names)
        if self.seen_mask is not None and len(self.seen_mask) != n:
            raise ValueError(
                f"eval set {self.name!r}: seen_mask has {len(self.seen_mask)} entries "
                f"for {n} classes"
            )
        for attribute, values in (self.attributes or {}).items():
            if len(values) != n:
                raise ValueError(
                    f"eval set {self.name!r}: attribute {attribute!r} has {len(values)} values "
                    f"for {n} classes"
                )
        if self.calibration and self.seen_mask is None:
            raise ValueError(f"eval set {self.name!r}: a calibration set needs a seen_mask")
        for split in self.half_splits or []:
            if any(not 0 <= i < n for i in split):
                raise ValueError(f"eval set {self.name!r}: a half split indexes outside {n}")


@dataclass(frozen=True)
class ClassSpace:
    """The class names of one zero-shot run, fixed once the data is set up.

    Attributes:
        train_classes: the seen classes, in label order of the training dataloader.
        val_classes: source classes held out from training, in label order of the validation
            dataloader (zero-shot validation picks checkpoints; may be empty).
        test_sets: one evaluation set per test dataloader, in dataloader order: each target's
            classes (with the 50% splits), the generalised sets (seen + unseen, ``seen_mask``)
            and the GZSL calibration set.
    """

    train_classes: list[str]
    val_classes: list[str] = field(default_factory=list)
    test_sets: list[EvalSet] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.train_classes:
            raise ValueError("a class space needs at least one training class")
        _check_distinct(self.train_classes, "training classes")
        _check_distinct(self.val_classes, "validation classes")
        shared = sorted(set(self.train_classes) & set(self.val_classes))
        if shared:
            raise ValueError(f"classes both trained and validated on: {shared}")
        names = [s.name for s in self.test_sets]
        if len(set(names)) != len(names):
            raise ValueError(f"test sets need distinct names, got {names}")


def _check_distinct(class_names: list[str], what: str) -> None:
    if len(set(class_names)) != len(class_names):
        dupes = sorted({n for n in class_names if class_names.count(n) > 1})
        raise ValueError(f"{what} has duplicate class names: {dupes}")
