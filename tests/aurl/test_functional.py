"""aurl.functional against numpy references written with plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aurl import functional
from aurl.functional import (
    _class_sums,
    _dispersion_compute,
    closeness,
    dispersion,
    harmonic_mean,
    mean_centre_distance,
    zero_shot_topk,
    zero_shot_topk_per_class,
)

# ---------------------------------------------------------------- numpy references (loops)


def ref_normalise(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(x.shape[0]):
        norm = math.sqrt(sum(float(v) ** 2 for v in x[i]))
        out[i] = x[i] / norm
    return out


def ref_centres(x: np.ndarray, y: np.ndarray) -> dict[int, np.ndarray]:
    e = ref_normalise(x)
    members: dict[int, list[np.ndarray]] = {}
    for i in range(len(y)):
        members.setdefault(int(y[i]), []).append(e[i])
    centres = {}
    for c, rows in members.items():
        total = np.zeros(x.shape[1])
        for row in rows:
            total = total + row
        centres[c] = total / len(rows)
    return centres


def ref_distance(a: np.ndarray, b: np.ndarray) -> float:
    return math.sqrt(sum((float(u) - float(v)) ** 2 for u, v in zip(a, b, strict=True)))


def ref_closeness(x: np.ndarray, y: np.ndarray) -> float:
    e = ref_normalise(x)
    centres = ref_centres(x, y)
    return sum(ref_distance(e[i], centres[int(y[i])]) for i in range(len(y))) / len(y)


def ref_pair_distances(x: np.ndarray, y: np.ndarray) -> list[float]:
    centres = ref_centres(x, y)
    classes = sorted(centres)
    return [
        ref_distance(centres[a], centres[b])
        for i, a in enumerate(classes)
        for b in classes[i + 1 :]
    ]


def ref_topk(v: np.ndarray, t: np.ndarray, y: np.ndarray, k: int) -> float:
    ev, et = ref_normalise(v), ref_normalise(t)
    hits = 0
    for i in range(len(y)):
        sims = [
            sum(float(a) * float(b) for a, b in zip(ev[i], et[j], strict=True))
            for j in range(len(et))
        ]
        # Stable descending order: higher similarity first, lower class index among ties.
        order = sorted(range(len(sims)), key=lambda j: (-sims[j], j))
        hits += int(y[i]) in order[:k]
    return hits / len(y)


def random_problem(seed: int, n: int, d: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.integers(0, num_classes, size=n)
    return x, y


# ---------------------------------------------------------------- closeness / dispersion

PROBLEMS = [(0, 12, 4, 3), (1, 40, 16, 7), (2, 5, 3, 5), (3, 64, 8, 30)]


@pytest.mark.parametrize(("seed", "n", "d", "num_classes"), PROBLEMS)
def test_closeness_matches_reference(seed: int, n: int, d: int, num_classes: int) -> None:
    x, y = random_problem(seed, n, d, num_classes)
    got = closeness(torch.from_numpy(x), torch.from_numpy(y))
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(ref_closeness(x, y), abs=1e-12)
    got32 = closeness(torch.from_numpy(x).float(), torch.from_numpy(y))
    assert got32.dtype == torch.float32
    assert got32.item() == pytest.approx(ref_closeness(x, y), abs=1e-6)


@pytest.mark.parametrize(("seed", "n", "d", "num_classes"), PROBLEMS)
def test_dispersion_and_mean_distance_match_reference(
    seed: int, n: int, d: int, num_classes: int
) -> None:
    x, y = random_problem(seed, n, d, num_classes)
    pairs = ref_pair_distances(x, y)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    assert dispersion(xt, yt).item() == pytest.approx(min(pairs), abs=1e-12)
    assert mean_centre_distance(xt, yt).item() == pytest.approx(sum(pairs) / len(pairs), abs=1e-12)
    assert dispersion(xt.float(), yt).item() == pytest.approx(min(pairs), abs=1e-6)


def test_hand_computed_values() -> None:
    # Class 0: two orthogonal unit vectors, centre (0.5, 0.5, 0); class 1: (0, 0, 3) -> (0, 0, 1).
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1])
    # Each class-0 video lies sqrt(0.5) from its centre; the single class-1 video lies on its own.
    assert closeness(x, y).item() == pytest.approx(2 * math.sqrt(0.5) / 3, abs=1e-12)
    assert dispersion(x, y).item() == pytest.approx(math.sqrt(1.5), abs=1e-12)
    assert mean_centre_distance(x, y).item() == pytest.approx(math.sqrt(1.5), abs=1e-12)


def test_labels_are_arbitrary_integer_ids() -> None:
    x, y = random_problem(4, 20, 5, 4)
    relabelled = np.array([[-3, 7, 42, 1000][int(c)] for c in y])
    xt = torch.from_numpy(x)
    for fn in (closeness, dispersion, mean_centre_distance):
        assert fn(xt, torch.from_numpy(relabelled)).item() == pytest.approx(
            fn(xt, torch.from_numpy(y)).item(), abs=1e-12
        )


def test_closeness_zero_when_each_class_is_one_direction() -> None:
    rng = np.random.default_rng(5)
    directions = rng.normal(size=(4, 6))
    y = rng.integers(0, 4, size=25)
    scales = rng.uniform(0.1, 10.0, size=25)
    # Different positive scales of one direction normalise to the same e_i.
    x = np.stack([scales[i] * directions[y[i]] for i in range(25)])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    assert closeness(xt, yt).item() == pytest.approx(0, abs=1e-12)
    assert closeness(xt.float(), yt).item() < 1e-6


def test_dispersion_invariant_to_sample_permutation_and_scale() -> None:
    x, y = random_problem(6, 50, 8, 6)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y)
    base = dispersion(xt, yt)
    for seed in range(3):
        perm = torch.randperm(50, generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(dispersion(xt[perm], yt[perm]), base, atol=1e-6)
        assert torch.allclose(closeness(xt[perm], yt[perm]), closeness(xt, yt), atol=1e-6)
    scale = torch.rand(50, 1, generator=torch.Generator().manual_seed(9)) + 0.5
    assert torch.allclose(dispersion(xt * scale, yt), base, atol=1e-6)


def test_dispersion_zero_for_classes_with_equal_centres() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0], [3.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1, 2])
    assert dispersion(x, y).item() == pytest.approx(0.0, abs=1e-7)
    assert mean_centre_distance(x, y).item() > 0


def test_dispersion_keeps_small_distances_exact_in_float32() -> None:
    # 30 classes on the unit circle, two of them 1e-4 rad apart: a matmul-based distance
    # (sqrt(2 - 2 cos)) loses this to cancellation in float32.
    angles = np.linspace(0, np.pi, 30, endpoint=False)
    angles[1] = angles[0] + 1e-4
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    y = np.arange(30)
    expected = 2 * math.sin(0.5e-4)
    got = dispersion(torch.from_numpy(x).float(), torch.from_numpy(y)).item()
    assert got == pytest.approx(expected, rel=1e-3)


def test_fewer_than_two_classes_gives_nan() -> None:
    x = torch.randn(4, 3)
    one_class = torch.zeros(4, dtype=torch.long)
    assert math.isnan(dispersion(x, one_class).item())
    assert math.isnan(mean_centre_distance(x, one_class).item())
    assert closeness(x, one_class).item() > 0


def test_class_sums_and_compute_ignore_absent_classes() -> None:
    x, y = random_problem(7, 15, 4, 3)
    labels = np.array([[0, 2, 5][int(c)] for c in y])  # classes 1, 3, 4 absent out of 6
    sums, counts = _class_sums(torch.from_numpy(x), torch.from_numpy(labels), 6)
    e = ref_normalise(x)
    for c in range(6):
        rows = [e[i] for i in range(15) if labels[i] == c]
        assert counts[c].item() == len(rows)
        expected = np.sum(rows, axis=0) if rows else np.zeros(4)
        np.testing.assert_allclose(sums[c].numpy(), expected, atol=1e-12)
    pairs = ref_pair_distances(x, labels)
    assert _dispersion_compute(sums, counts, "min").item() == pytest.approx(min(pairs), abs=1e-12)
    assert _dispersion_compute(sums, counts, "mean").item() == pytest.approx(
        sum(pairs) / len(pairs), abs=1e-12
    )
    with pytest.raises(ValueError, match="reduction"):
        _dispersion_compute(sums, counts, "max")


# ---------------------------------------------------------------- zero-shot top-k


@pytest.mark.parametrize(("seed", "n", "d", "num_classes"), [(0, 30, 5, 4), (1, 50, 16, 12)])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_zero_shot_topk_matches_reference(
    seed: int, n: int, d: int, num_classes: int, k: int
) -> None:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, d))
    t = rng.normal(size=(num_classes, d))
    y = rng.integers(0, num_classes, size=n)
    got = zero_shot_topk(torch.from_numpy(v), torch.from_numpy(t), torch.from_numpy(y), k)
    assert got.item() == pytest.approx(ref_topk(v, t, y, k), abs=1e-12)


def test_zero_shot_topk_is_cosine_not_dot_product() -> None:
    # By dot product the long class vector 1 would win; by cosine class 0 is nearer.
    v = torch.tensor([[1.0, 0.1]])
    t = torch.tensor([[1.0, 0.0], [10.0, 10.0]])
    assert zero_shot_topk(v, t, torch.tensor([0])).item() == 1.0


def test_zero_shot_topk_breaks_ties_by_lower_class_index() -> None:
    # Classes 0 and 2 share one embedding, so their similarities tie exactly.
    t = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    v = torch.tensor([[2.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 2, 1])
    assert zero_shot_topk(v, t, y, k=1).item() == pytest.approx(2 / 3)  # class 2 loses the tie
    assert zero_shot_topk(v, t, y, k=2).item() == 1.0
    v_np, t_np, y_np = v.numpy(), t.numpy(), y.numpy()
    assert zero_shot_topk(v, t, y, k=1).item() == pytest.approx(ref_topk(v_np, t_np, y_np, 1))


def test_zero_shot_topk_collapsed_model_predicts_class_zero() -> None:
    v = torch.ones(6, 4)
    t = torch.ones(3, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    assert zero_shot_topk(v, t, y, k=1).item() == pytest.approx(2 / 6)
    assert zero_shot_topk(v, t, y, k=2).item() == pytest.approx(4 / 6)


def test_zero_shot_topk_nan_embedding_is_wrong() -> None:
    v = torch.tensor([[1.0, 0.0], [float("nan"), 0.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert zero_shot_topk(v, t, torch.tensor([0, 0])).item() == 0.5


# ---------------------------------------------------------------- harmonic mean


def test_harmonic_mean() -> None:
    assert harmonic_mean(0.5, 0.25).item() == pytest.approx(1 / 3)
    assert harmonic_mean(0.3, 0.3).item() == pytest.approx(0.3)
    assert harmonic_mean(0.0, 0.7).item() == 0.0
    assert harmonic_mean(0, 0).item() == 0.0
    got = harmonic_mean(torch.tensor([0.2, 0.0, 0.9]), torch.tensor(0.6))
    expected = [2 / (1 / 0.2 + 1 / 0.6), 0.0, 2 / (1 / 0.9 + 1 / 0.6)]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    assert math.isnan(harmonic_mean(0.0, float("nan")).item())  # a part never measured
    assert math.isnan(harmonic_mean(float("nan"), 0.4).item())
    with pytest.raises(ValueError, match="non-negative"):
        harmonic_mean(-0.1, 0.5)


# ---------------------------------------------------------------- input validation


@pytest.mark.parametrize("fn", [closeness, dispersion, mean_centre_distance])
def test_embedding_label_validation(fn) -> None:
    with pytest.raises(ValueError, match="labels has 3 entries but the embeddings have 4"):
        fn(torch.randn(4, 2), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="empty"):
        fn(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="2-D floating"):
        fn(torch.randn(4), torch.tensor([0, 1, 1, 0]))
    with pytest.raises(ValueError, match="2-D floating"):
        fn(torch.ones(4, 2, dtype=torch.long), torch.tensor([0, 1, 1, 0]))
    with pytest.raises(ValueError, match="integer"):
        fn(torch.randn(4, 2), torch.tensor([0.0, 1.0, 1.0, 0.0]))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        fn(np.zeros((4, 2)), torch.tensor([0, 1, 1, 0]))


def test_zero_shot_topk_validation() -> None:
    v, t, y = torch.randn(5, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 3, 0])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got values in \[0, 4\]"):
        zero_shot_topk(v, t, torch.tensor([0, 1, 2, 4, 0]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        zero_shot_topk(v, t, torch.tensor([0, 1, -1, 3, 0]))
    with pytest.raises(ValueError, match="dimension 3 but class_embeddings have dimension 2"):
        zero_shot_topk(v, torch.randn(4, 2), y)
    for bad_k in (0, 5, True, 1.0):
        with pytest.raises(ValueError, match="k must be an integer"):
            zero_shot_topk(v, t, y, k=bad_k)
    with pytest.raises(ValueError, match="class_embeddings is empty"):
        zero_shot_topk(v, torch.zeros(0, 3), y)
    with pytest.raises(ValueError, match="labels has 4 entries"):
        zero_shot_topk(v, t, y[:4])


def test_zero_shot_topk_per_class_by_hand_and_consistent_with_the_mean() -> None:
    t = torch.eye(3)  # classes 0, 1, 2 along the axes
    v = torch.tensor(
        [
            [1.0, 0.1, 0.0],  # class 0, nearest 0: right
            [0.0, 1.0, 0.0],  # class 0, nearest 1: wrong (class 0 is 2nd)
            [1.0, 1.0, 0.0],  # class 1, tie between 0 and 1: lower index wins, wrong
            [float("nan"), 0.0, 1.0],  # class 1, non-finite: wrong
        ]
    )
    labels = torch.tensor([0, 0, 1, 1])  # class 2 has no videos
    top1 = zero_shot_topk_per_class(v, t, labels)
    assert top1[:2].tolist() == [0.5, 0.0] and math.isnan(top1[2])
    assert zero_shot_topk_per_class(v, t, labels, k=2)[:2].tolist() == [1.0, 0.5]
    counts = torch.bincount(labels, minlength=3)[:2].float()
    weighted = (top1[:2] * counts).sum() / counts.sum()
    assert torch.isclose(weighted, zero_shot_topk(v, t, labels))
    with pytest.raises(ValueError, match="zero_shot_topk_per_class: k must be"):
        zero_shot_topk_per_class(v, t, labels, k=4)


def _biased_gzsl_set(seed: int = 0):
    """Videos near their class, but every seen class scores 0.3 too high for unseen videos."""
    gen = torch.Generator().manual_seed(seed)
    classes = F.normalize(torch.randn(6, 8, generator=gen, dtype=torch.float64), dim=1)
    seen_mask = torch.tensor([True, True, True, True, False, False])
    labels = torch.arange(60) % 6
    videos = classes[labels] + 0.6 * torch.randn(60, 8, generator=gen, dtype=torch.float64)
    videos = videos + 0.8 * classes[:4].sum(0)  # pulled towards the seen classes
    return videos, classes, labels, seen_mask


def test_gzsl_accuracies_are_nearest_neighbour_with_seen_scores_lowered_by_gamma() -> None:
    videos, classes, labels, seen_mask = _biased_gzsl_set()
    sims = F.normalize(videos, dim=1) @ classes.T  # (N, C)
    for gamma in (0.0, 0.1, 0.5):
        pred = (sims - gamma * seen_mask.double()).argmax(1)
        expected_seen = (pred == labels)[seen_mask[labels]].double().mean()
        expected_unseen = (pred == labels)[~seen_mask[labels]].double().mean()
        seen, unseen = functional.gzsl_accuracies(videos, classes, labels, seen_mask, gamma)
        assert float(seen) == pytest.approx(float(expected_seen))
        assert float(unseen) == pytest.approx(float(expected_unseen))
    plain = functional.gzsl_accuracies(videos, classes, labels, seen_mask)
    rows = ~seen_mask[labels]
    assert float(plain[1]) == pytest.approx(
        float(functional.zero_shot_topk(videos[rows], classes, labels[rows], 1))
    )
    only_seen = labels < 4
    seen, unseen = functional.gzsl_accuracies(
        videos[only_seen], classes, labels[only_seen], seen_mask
    )
    assert math.isnan(float(unseen)) and not math.isnan(float(seen))


def test_selected_gamma_reaches_the_best_h_of_a_fine_grid() -> None:
    videos, classes, labels, seen_mask = _biased_gzsl_set()
    gamma, h = functional.select_calibration_gamma(videos, classes, labels, seen_mask)

    def h_at(g: float) -> float:
        return float(
            functional.harmonic_mean(
                *functional.gzsl_accuracies(videos, classes, labels, seen_mask, g)
            )
        )

    grid = max(h_at(g) for g in torch.linspace(-2.5, 2.5, 2001).tolist())
    assert h == pytest.approx(h_at(gamma)) and h == pytest.approx(grid)
    assert h > h_at(0.0) and gamma > 0  # the bias towards seen classes is undone
    with pytest.raises(ValueError, match="seen and unseen"):
        functional.select_calibration_gamma(
            videos[labels < 4], classes, labels[labels < 4], seen_mask
        )


def test_attribute_accuracy_and_confusion_count_the_top1_classes() -> None:
    classes = torch.eye(4, dtype=torch.float64)  # classes 0..3
    # Videos of classes 0, 0, 1, 2, 3 predicted as 0, 1, 1, 3, 3.
    videos = classes[[0, 1, 1, 3, 3]] + 0.01
    labels = torch.tensor([0, 0, 1, 2, 3])
    colour = torch.tensor([0, 0, 1, 1])  # classes 0, 1 share a colour; 2, 3 another
    shape = torch.tensor([0, 1, 0, 1])
    assert float(functional.attribute_accuracy(videos, classes, labels, colour)) == 1.0
    assert float(functional.attribute_accuracy(videos, classes, labels, shape)) == 0.6
    counts = functional.confusion_matrix(videos, classes, labels)
    expected = torch.zeros(4, 4, dtype=torch.int64)
    for true, pred in [(0, 0), (0, 1), (1, 1), (2, 3), (3, 3)]:
        expected[true, pred] += 1
    assert torch.equal(counts, expected)
    assert int(counts.trace()) == round(
        5 * float(functional.zero_shot_topk(videos, classes, labels))
    )
    with pytest.raises(ValueError, match="class_values"):
        functional.attribute_accuracy(videos, classes, labels, colour[:3])
