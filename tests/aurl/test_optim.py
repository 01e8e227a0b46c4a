from __future__ import annotations

import math

import pytest
import torch

from aurl.optim import create_optimizer, create_warmup_cosine, warmup_cosine_factor


def test_warmup_is_linear_then_cosine_reaches_zero() -> None:
    warmup, total = 4, 14
    factors = [warmup_cosine_factor(s, warmup, total) for s in range(total + 1)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # Cosine part: step 4 + j has factor 0.5 * (1 + cos(pi * j / 10)).
    for j in range(11):
        assert factors[4 + j] == pytest.approx(0.5 * (1 + math.cos(math.pi * j / 10)))
    assert factors[-1] == pytest.approx(0.0, abs=1e-12)


def test_scheduler_drives_the_optimizer_per_step() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = create_optimizer([param], "sgd", lr=0.1)
    scheduler = create_warmup_cosine(optimizer, warmup_steps=2, total_steps=6)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:2] == pytest.approx([0.05, 0.1])
    assert lrs[2] == pytest.approx(0.1)
    assert lrs[-1] < lrs[2]


def test_optimizer_choices() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    sgd = create_optimizer([param], "sgd", lr=0.05, momentum=0.9, weight_decay=1e-4)
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["momentum"] == 0.9 and sgd.defaults["weight_decay"] == 1e-4
    assert isinstance(create_optimizer([param], "adamw", lr=1e-3), torch.optim.AdamW)
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        create_optimizer([param], "adam")
    with pytest.raises(ValueError, match="total_steps"):
        warmup_cosine_factor(0, 1, 0)
