"""Packaging: setup.cfg's ranges for users, constraints.txt's exact versions for `make install`.

Every package that setup.cfg names (core and extras) has one exact pin in constraints.txt, and
that pin lies inside setup.cfg's range, so the versions tested are versions users may get.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def declared_requirements() -> dict[str, list[Requirement]]:
    """setup.cfg's requirements keyed by where they are declared: ``"core"`` or the extra."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")

    def parse(value: str) -> list[Requirement]:
        return [Requirement(line) for line in value.strip().splitlines()]

    declared = {"core": parse(config["options"]["install_requires"])}
    for extra, value in config["options.extras_require"].items():
        declared[extra] = parse(value)
    return declared


def constraint_pins() -> dict[str, Version]:
    """constraints.txt as canonical package name -> exact version."""
    pins: dict[str, Version] = {}
    for number, raw in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", (
            f"constraints.txt:{number}: {raw!r} is not one exact '==' pin"
        )
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"constraints.txt:{number}: {name} is pinned twice"
        pins[name] = Version(specifiers[0].version)
    return pins


ALL_DECLARED = [
    pytest.param(requirement, id=f"{where}:{requirement.name}")
    for where, requirements in declared_requirements().items()
    for requirement in requirements
]


def test_setup_cfg_declares_ranges_not_pins() -> None:
    for requirement in (param.values[0] for param in ALL_DECLARED):
        operators = {spec.operator for spec in requirement.specifier}
        assert operators & {">=", ">", "~="}, f"{requirement}: no lower bound"
        assert not operators & {"==", "==="}, f"{requirement}: an exact pin belongs in constraints"


@pytest.mark.parametrize("requirement", ALL_DECLARED)
def test_each_declared_package_is_pinned_inside_its_range(requirement: Requirement) -> None:
    pins = constraint_pins()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"setup.cfg names {requirement.name} but constraints.txt does not pin it"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"constraints.txt pins {name}=={pins[name]}, outside setup.cfg's {requirement}"
    )


def test_make_install_uses_the_constraints_and_every_extra() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (extras,) = re.findall(r"^EXTRAS := (.+)$", makefile, flags=re.MULTILINE)
    assert set(extras.split(",")) == set(declared_requirements()) - {"core"}
    assert "pip install -c constraints.txt -e '.[$(EXTRAS)]'" in makefile
    (prerequisites,) = re.findall(r"^\$\(VENV\)/\.installed: (.+?) \|", makefile, re.MULTILINE)
    assert "constraints.txt" in prerequisites.split()  # a changed pin re-runs the install
