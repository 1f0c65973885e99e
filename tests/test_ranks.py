import itertools
import math
import time

import numpy as np
import pytest
import torch

from archgraph.ranks import log_ranks, path_rank, top_paths


def random_alpha(d, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(d, w, generator=g, dtype=torch.float64), dim=1)


def brute_force(alpha):
    """path -> ψ by the definition: the product of one entry per row (FaDE §2.3)."""
    a = alpha.tolist()
    return {path: math.prod(a[i][k] for i, k in enumerate(path))
            for path in itertools.product(range(len(a[0])), repeat=len(a))}


def test_log_ranks_match_brute_force_products():
    alpha = random_alpha(3, 4)
    ranks = log_ranks(alpha)
    assert ranks.shape == (4, 4, 4) and ranks.dtype == torch.float64
    for path, psi in brute_force(alpha).items():
        assert ranks[path].exp().item() == pytest.approx(psi, rel=1e-12)
    assert ranks.exp().sum().item() == pytest.approx(1.0)  # rows of probabilities: the paths' ψ sum to 1


def test_log_ranks_shape_for_fade_space():
    ranks = log_ranks(random_alpha(4, 5))  # FaDE §3.1: 5 cells per row, 4 rows
    assert ranks.shape == (5,) * 4 and ranks.numel() == 625


def test_inputs_tensor_array_and_rows_agree():
    alpha = random_alpha(3, 4, seed=1)
    expected = log_ranks(alpha)
    assert torch.equal(log_ranks(alpha.numpy()), expected)
    assert torch.equal(log_ranks(alpha.tolist()), expected)
    assert torch.equal(log_ranks(list(alpha)), expected)  # a list of row tensors, e.g. BilevelResult.alphas
    assert torch.equal(log_ranks(alpha.float()), log_ranks(alpha.float().double()))


def test_top_paths_are_the_brute_force_order():
    alpha = random_alpha(3, 4, seed=2)
    expected = sorted(brute_force(alpha).items(), key=lambda item: -item[1])
    got = top_paths(alpha, k=10)
    assert [path for path, _ in got] == [path for path, _ in expected[:10]]
    for (_, psi), (_, want) in zip(got, expected):
        assert psi == pytest.approx(want, rel=1e-12)
    assert [psi for _, psi in got] == sorted((psi for _, psi in got), reverse=True)
    assert got[0][0] == tuple(alpha.argmax(dim=1).tolist())


def test_top_paths_agree_with_topk_over_all_paths():
    alpha = random_alpha(6, 5, seed=3)
    flat = log_ranks(alpha).flatten()
    values, indices = torch.topk(flat, 50)
    expected = [tuple(int(i) for i in np.unravel_index(int(j), (5,) * 6)) for j in indices]
    got = top_paths(alpha, k=50)
    assert [path for path, _ in got] == expected
    assert [psi for _, psi in got] == [math.exp(v) for v in values.tolist()]  # the very same sums


def test_top_paths_breaks_ties_by_the_smaller_path_and_returns_all_when_k_is_large():
    got = top_paths([[0.5, 0.5], [0.25, 0.75]], k=100)
    assert [path for path, _ in got] == [(0, 1), (1, 1), (0, 0), (1, 0)]
    assert [psi for _, psi in got] == pytest.approx([0.375, 0.375, 0.125, 0.125])


def test_path_rank_is_the_product_and_equals_top_paths_score():
    alpha = random_alpha(3, 4, seed=4)
    truth = brute_force(alpha)
    for path, psi in top_paths(alpha, k=64):
        assert path_rank(alpha, path) == psi
        assert psi == pytest.approx(truth[path], rel=1e-12)


def test_zero_entries_give_zero_rank():
    alpha = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    ranks = log_ranks(alpha)
    assert ranks[1, 0].item() == -math.inf and ranks[0, 1].item() == pytest.approx(math.log(0.5))
    assert path_rank(alpha, (1, 1)) == 0.0
    assert [path for path, _ in top_paths(alpha, k=4)] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [psi for _, psi in top_paths(alpha, k=4)][2:] == [0.0, 0.0]


def test_large_space_is_fast():
    alpha = random_alpha(8, 5, seed=5)  # 5^8 = 390,625 paths
    start = time.perf_counter()
    ranks = log_ranks(alpha)
    best = top_paths(alpha, k=10)
    assert time.perf_counter() - start < 2.0
    assert ranks.numel() == 390_625
    flat = ranks.flatten()
    assert best[0][1] == pytest.approx(flat.max().exp().item(), rel=1e-12)
    assert sorted(flat.tolist(), reverse=True)[9] == pytest.approx(math.log(best[9][1]), rel=1e-12)


def test_top_paths_in_a_space_too_large_to_enumerate():
    alpha = random_alpha(14, 8, seed=6)  # the DARTS cell: 8^14 ≈ 4.4e12 paths
    best = top_paths(alpha, k=5)
    assert best[0][0] == tuple(alpha.argmax(dim=1).tolist())
    # the runner-up differs from the best path in the row whose second choice costs least
    ratios = alpha.sort(dim=1, descending=True).values
    row = int((ratios[:, 1] / ratios[:, 0]).argmax())
    runner_up = list(best[0][0])
    runner_up[row] = int(alpha[row].argsort(descending=True)[1])
    assert best[1][0] == tuple(runner_up)
    assert best[1][1] == pytest.approx(best[0][1] * float(ratios[row, 1] / ratios[row, 0]), rel=1e-12)


@pytest.mark.parametrize(
    ("alpha", "message"),
    [
        (torch.ones(4), r"\(d, w\) matrix .* got shape \(4,\)"),
        (torch.ones(2, 3, 4), r"got shape \(2, 3, 4\)"),
        (torch.ones(0, 3), r"got shape \(0, 3\)"),
        ([], r"got shape \(0, 0\)"),
        ([[0.5, 0.5], [0.2, 0.3, 0.5]], r"rows of lengths \[2, 3\]"),
        ([[0.5, 1.5]], r"entries in \[0, 1\]; alpha\[0, 1\] = 1.5: pass Choice.probabilities\(\)"),
        ([[0.5, 0.5], [-0.1, 1.0]], r"alpha\[1, 0\] = -0.1"),
        ([[0.5, float("nan")]], r"alpha\[0, 1\] = nan"),
    ],
)
def test_bad_alpha_is_refused(alpha, message):
    with pytest.raises(ValueError, match=message):
        log_ranks(alpha)
    with pytest.raises(ValueError, match=message):
        top_paths(alpha)


def test_bad_paths_and_k_are_refused():
    alpha = random_alpha(2, 3)
    with pytest.raises(ValueError, match=r"each of the 2 rows; got 3 indices"):
        path_rank(alpha, (0, 1, 2))
    with pytest.raises(ValueError, match=r"row 1 has candidates 0 .. 2, got 3"):
        path_rank(alpha, (0, 3))
    with pytest.raises(ValueError, match=r"positive int; got 0"):
        top_paths(alpha, k=0)
