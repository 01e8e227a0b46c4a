from __future__ import annotations

import torch

from aurl.text_encoders import create_text_encoder, list_text_encoders


def test_random_encoder_is_fixed_per_name_and_ignores_words() -> None:
    assert "random" in list_text_encoders()
    encoder = create_text_encoder("random", dim=16, seed=1)
    a = encoder.encode(["red square moving left", "red square moving right", "blue circle"])
    again = encoder.encode(["blue circle", "red square moving left"])
    assert a.shape == (3, 16)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(again[0], a[2])
    torch.testing.assert_close(again[1], a[0])
    # Names sharing words get no more similar vectors than unrelated ones would on average.
    assert abs(float(a[0] @ a[1])) < 0.9
    other_seed = create_text_encoder("random", dim=16, seed=2).encode(["blue circle"])
    assert not torch.allclose(other_seed[0], a[2])
    assert encoder.cache_key != create_text_encoder("random", dim=16, seed=2).cache_key
