"""FaDE-ranks: the score a hyper-architecture's α gives each of the ``w^d`` paths through it.

A hyper-architecture ``H`` of ``d`` rows with ``w`` candidates each stands for the ``w^d``
architectures of the cross product of its rows (FaDE, Neumeier, Stier & Granitzer 2024, §2.2).
After training, row ``i`` holds a preference ``alpha[i]`` over its candidates (its Choice's
``probabilities()``), and the FaDE-rank of the path ``(k_1, ..., k_d)`` is the product

    ψ_α(H_{1k_1}, ..., H_{dk_d}) = ∏_i α_{i,k_i}        (FaDE §2.3)

Products of many small numbers underflow, so everything here works in log space and in
float64: :func:`log_ranks` broadcasts the rows' logs into a tensor of shape ``(w,) * d``
(one vectorised sum per row, never a loop over paths), :func:`top_paths` finds the best
``k`` paths without building that tensor at all, and :func:`path_rank` scores one path.
Paths are tuples of 0-based candidate indices, one per row.

Examples
--------
>>> import torch
>>> from archgraph.ranks import log_ranks, path_rank, top_paths
>>> alpha = [[0.7, 0.3], [0.2, 0.8]]         # or a tensor, an array: one row per Choice
>>> log_ranks(alpha).exp()
tensor([[0.1400, 0.5600],
        [0.0600, 0.2400]], dtype=torch.float64)
>>> [(path, round(psi, 6)) for path, psi in top_paths(alpha, k=2)]
[((0, 1), 0.56), ((1, 1), 0.24)]
>>> round(path_rank(alpha, (1, 0)), 6)
0.06
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .errors import SettingError, ShapeError, SpaceError

__all__ = ["log_ranks", "path_rank", "top_paths"]

AlphaLike = torch.Tensor | np.ndarray | Sequence[Sequence[float]] | Sequence[torch.Tensor]


def log_ranks(alpha: AlphaLike) -> torch.Tensor:
    """``log ψ`` of every path: a float64 tensor of shape ``(w,) * d`` (FaDE §2.3).

    Entry ``[k_1, ..., k_d]`` is ``Σ_i log alpha[i, k_i]``; a zero probability gives
    ``-inf`` (ψ = 0). The tensor has ``w^d`` entries, so it is for spaces that fit in
    memory (FaDE §3.1: 5^4 = 625); :func:`top_paths` scales to any size.

    Parameters
    ----------
    alpha:
        A ``(d, w)`` matrix of probabilities in ``[0, 1]`` — a tensor, an array, or a
        sequence of ``d`` equal-length rows (e.g. ``BilevelResult.alphas``); rows need not
        sum to 1 (sigmoid relaxations do not).

    Examples
    --------
    >>> import torch
    >>> ranks = log_ranks(torch.full((4, 5), 0.2))
    >>> ranks.shape, ranks.numel()
    (torch.Size([5, 5, 5, 5]), 625)
    >>> bool(torch.allclose(ranks.exp(), torch.tensor(0.2 ** 4, dtype=torch.float64)))
    True
    """
    logs = _as_matrix(alpha).log()
    ranks = logs[0]
    for i in range(1, len(logs)):  # one broadcast sum per row: shape (w,) * i  +  (w,)  ->  (w,) * (i + 1)
        ranks = ranks.unsqueeze(-1) + logs[i]
    return ranks


def top_paths(alpha: AlphaLike, k: int = 10) -> list[tuple[tuple[int, ...], float]]:
    """The ``k`` paths with the highest FaDE-rank, best first, as ``(path, ψ)`` pairs.

    Row by row, only the best ``k`` prefixes are kept: a prefix outside the best ``k``
    has ``k`` better ones, each of which gives a better path with the same suffix, so no
    path through it can be among the best ``k``. This takes ``O(d·k·w)`` work and finds
    the same paths as ``torch.topk`` over the flattened :func:`log_ranks` (the sums are
    formed in the same order, so the scores are identical), even for spaces far too large
    to enumerate (DARTS: 8^14 paths). Ties are broken by the smaller path, compared as
    tuples. ``k`` larger than ``w^d`` returns every path.

    Examples
    --------
    >>> [(path, round(psi, 6)) for path, psi in top_paths([[0.5, 0.25, 0.25], [0.1, 0.9, 0.0]], k=3)]
    [((0, 1), 0.45), ((1, 1), 0.225), ((2, 1), 0.225)]
    >>> len(top_paths([[0.5, 0.5]] * 20, k=4))   # 2^20 paths, never enumerated
    4
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise SettingError(f"k is the number of paths to return, a positive int; got {k!r}")
    logs = _as_matrix(alpha).cpu().log().numpy()
    d, w = logs.shape
    paths = np.arange(w).reshape(w, 1)  # the best prefixes so far, one per line ...
    scores = logs[0]                    # ... and their log ψ
    paths, scores = _best(paths, scores, k)
    for i in range(1, d):
        paths = np.concatenate([np.repeat(paths, w, axis=0), np.tile(np.arange(w), len(paths))[:, None]], axis=1)
        scores = (scores[:, None] + logs[i][None, :]).reshape(-1)
        paths, scores = _best(paths, scores, k)
    return [(tuple(int(c) for c in path), math.exp(score)) for path, score in zip(paths, scores)]


def path_rank(alpha: AlphaLike, path: Sequence[int]) -> float:
    """ψ of one path ``(k_1, ..., k_d)``: ``∏_i alpha[i, k_i]`` (FaDE §2.3).

    Computed as ``exp(Σ_i log alpha[i, k_i])``, summed in row order, so it equals the
    score :func:`top_paths` reports for the same path.

    Examples
    --------
    >>> round(path_rank([[0.5, 0.5], [0.1, 0.9], [1.0, 0.0]], (0, 1, 0)), 6)
    0.45
    >>> path_rank([[0.5, 0.5], [0.1, 0.9], [1.0, 0.0]], (0, 1, 1))
    0.0
    """
    logs = _as_matrix(alpha).log()
    d, w = logs.shape
    path = tuple(path)
    if len(path) != d:
        raise SpaceError(f"a path picks one candidate in each of the {d} rows; got {len(path)} indices: {path}")
    for i, c in enumerate(path):
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < w:
            raise SpaceError(f"path {path}: row {i} has candidates 0 .. {w - 1}, got {c!r}")
    score = 0.0
    for i, c in enumerate(path):
        score = score + logs[i, int(c)].item()
    return math.exp(score)


def _best(paths: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best lines of ``paths``: highest score first, ties by the smaller path."""
    # np.lexsort sorts by its last key first: -score, then the path's first index, second, ...
    order = np.lexsort((*paths.T[::-1], -scores))[:k]
    return paths[order], scores[order]


def _row(row) -> torch.Tensor:
    if isinstance(row, torch.Tensor):
        return row.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(row, dtype=np.float64))


def _as_matrix(alpha: AlphaLike) -> torch.Tensor:
    """``alpha`` as a float64 ``(d, w)`` tensor of probabilities, or a clear error."""
    if isinstance(alpha, torch.Tensor):
        matrix = alpha.detach()
    elif isinstance(alpha, np.ndarray):
        matrix = torch.from_numpy(alpha)
    else:
        rows = list(alpha)
        lengths = [len(row) for row in rows]
        if len(set(lengths)) > 1:
            raise ShapeError(
                f"FaDE-ranks need a (d, w) matrix, one row of w probabilities per Choice; got rows of "
                f"lengths {lengths}: give every row the same number of candidates"
            )
        matrix = torch.stack([_row(r) for r in rows]) if rows else torch.empty(0, 0)
    if matrix.dim() != 2 or 0 in matrix.shape:
        raise ShapeError(
            f"FaDE-ranks need a (d, w) matrix with d, w >= 1, one row of probabilities per Choice; "
            f"got shape {tuple(matrix.shape)}"
        )
    matrix = matrix.to(torch.float64)
    bad = ~((matrix >= 0) & (matrix <= 1))  # also catches NaN
    if bad.any():
        i, c = (int(j) for j in bad.nonzero()[0])
        raise SettingError(
            f"FaDE-ranks multiply probabilities, entries in [0, 1]; alpha[{i}, {c}] = {matrix[i, c].item()}: "
            "pass Choice.probabilities(), not the raw architecture parameters"
        )
    return matrix
