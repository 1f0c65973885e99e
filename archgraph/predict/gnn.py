"""A GNN that ranks architectures, trained on pairs of partially trained ones (RANK-NOSH).

RANK-NOSH (Wang, PhD thesis, ch. 4; Wang, Chen, Cheng, Tang & Hsieh, ICCV 2021) keeps a pool of
candidates trained for different numbers of epochs and asks a predictor which ones deserve more
training. Accuracies after different budgets are not comparable as regression targets, but some
*orderings* are: :func:`pairs` keeps ``i ≻ j`` whenever ``i`` is more accurate than ``j``
although trained for no more epochs (``acc_i > acc_j`` and ``epochs_i ≤ epochs_j``): at equal
budgets the comparison is direct, and an architecture that beats another while trained for
fewer epochs is taken to beat it at the full budget too (learning curves rise). A better one
trained for *more* epochs may only be ahead by its extra epochs, so that pair is left out; so
are ties and two observations of the same architecture (isomorphic cells), whose scores are
equal by construction.

The model is a Graph Isomorphism Network (Xu, Hu, Leskovec & Jegelka, "How Powerful are Graph
Neural Networks?", ICLR 2019) on the graph of :class:`~archgraph.predict.featurize.Featurizer`:
each layer is a GIN update along the edges plus one against them (``x' = MLP(x + Σ x_u)``, eq.
4.1 with ε = 0, GIN-0), so a vertex hears both its inputs and its consumers, as in the
bidirectional GCN of Wen et al. 2020 ("Neural Predictor for Neural Architecture Search"); the
readout concatenates the sum-pooled vertex features of every layer, input layer included (Xu et
al. eq. 4.2), and an MLP head maps it to a scalar score. There is no batch norm, so a score does
not depend on what it is scored with.

Optional per-architecture inputs (zero-cost proxy scores, say) are standardised over the
training set, concatenated to the readout, and also added through a linear term ``w·e``. The
head's output layer starts at zero and ``w`` at the unit vector along the mean difference of the
inputs over the training pairs, so a fit starts from the inputs' own ranking and the GNN learns
what they miss; without that start the GNN, which moves the scores far faster, memorises a small
training set before the inputs are used. The logistic loss, which never stops pulling scores
apart, erodes that start on small training sets: use the hinge with extra inputs.

Training minimises a pairwise ranking loss over all pairs at once (one full-batch Adam step per
epoch, no sampling, so a CPU fit is a deterministic function of the seed): the hinge
``max(0, margin − (s_i − s_j))`` (the ranking-SVM loss, Herbrich, Graepel & Obermayer 1999) or
the logistic ``log(1 + exp(−(s_i − s_j)))`` (RankNet, Burges et al. 2005; BPR, Rendle et al.
2009).

Accuracies measured once per architecture are noisy, and a GIN of this size fits the noise:
on the 300-architecture digits table (``benchmarks/predictor_quality.py``, 200 training
architectures; the table's split-half ceiling is 0.66) the default 200 epochs rank the training
architectures at Kendall τ 0.94 and held-out ones at 0.47; 50 epochs at 0.75 and 0.57 (the
random forest on graph features: 0.53). The defaults stay as they are, so that stored searches
replay; fewer epochs or early stopping are the settings to choose on noisy accuracies.
``validation_fraction`` holds out that share of the training architectures and keeps the weights
of the epoch that orders their pairs best (early stopping, as scikit-learn's
``MLPRegressor(early_stopping=True)`` does; the held-out architectures are not trained on).

Examples
--------
>>> import numpy as np
>>> from archgraph import spaces
>>> from archgraph.generate import random_dag
>>> from archgraph.predict.gnn import RankingPredictor
>>> space = spaces.load("fade")
>>> rng = np.random.default_rng(0)
>>> archs = [tuple(random_dag(5, rng) for _ in space.cells) for _ in range(20)]
>>> obs = [(a, 10, sum(c.num_edges for c in a) / 40) for a in archs]   # more edges, more accurate
>>> p = RankingPredictor(space, hidden=16, epochs=30).fit(obs)
>>> p
RankingPredictor(space='fade', hidden=16, layers=3, loss='hinge', margin=0.1, epochs=30)
>>> p.score(archs[:3]).shape
(3,)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import SettingError, ShapeError, SpaceError
from ..graph import ArchGraph
from ..spaces import Space
from .featurize import Featurizer, ops_present

__all__ = ["RankingPredictor", "pairs", "LOSSES"]

#: The pairwise losses :class:`RankingPredictor` offers.
LOSSES = ("hinge", "logistic")
_FORMAT = "archgraph.RankingPredictor/1"
_CHUNK = 1024  # architectures per forward pass when scoring


def pairs(observations: Iterable[Sequence]) -> list[tuple[int, int]]:
    """The meaningful comparisons among observations, as index pairs ``(i, j)``: ``i`` should
    rank above ``j``.

    ``(i, j)`` is kept when ``accuracy_i > accuracy_j``, ``epochs_i ≤ epochs_j`` and the two
    architectures differ (RANK-NOSH; see the module docstring). Observations are
    ``(arch, epochs, accuracy)`` or ``(arch, epochs, accuracy, extra)``; pairs come sorted.

    Examples
    --------
    >>> from archgraph import ArchGraph
    >>> a, b, c = (ArchGraph([(0, 1)]),), (ArchGraph([(0, 1), (1, 2)]),), (ArchGraph([(0, 2), (1, 2)]),)
    >>> pairs([(a, 10, 0.9), (b, 10, 0.8),    # same budget: 0 ≻ 1
    ...        (c, 20, 0.95),                  # better, but trained longer than 0 and 1: no pair
    ...        (a, 5, 0.85)])                  # better than 1 with fewer epochs: 3 ≻ 1; a = a: no pair
    [(0, 1), (3, 1)]
    """
    archs, epochs, accuracy, _ = _unpack(observations)
    if not archs:
        return []
    ids = {}
    key = np.array([ids.setdefault(tuple(c.canonical_hash() for c in a), len(ids)) for a in archs])
    keep = ((accuracy[:, None] > accuracy[None, :]) & (epochs[:, None] <= epochs[None, :])
            & (key[:, None] != key[None, :]))
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(keep))]


class _GIN(nn.Module):
    """GIN-0 layers along and against the edges, sum readout of every layer, MLP head."""

    def __init__(self, in_channels: int, hidden: int, layers: int, extra: int):
        from torch_geometric.nn import GINConv

        super().__init__()

        def mlp(i: int) -> nn.Module:  # the two-layer MLP of Xu et al. §4.1
            return nn.Sequential(nn.Linear(i, hidden), nn.ReLU(), nn.Linear(hidden, hidden))

        widths = [in_channels] + [hidden] * (layers - 1)
        self.along = nn.ModuleList(GINConv(mlp(w)) for w in widths)
        self.against = nn.ModuleList(GINConv(mlp(w)) for w in widths)
        self.head = nn.Sequential(nn.Linear(in_channels + layers * hidden + extra, hidden), nn.ReLU(),
                                  nn.Linear(hidden, 1))
        self.extra_weight = nn.Parameter(torch.zeros(extra))  # a direct path for the extras, set by fit
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x, edge_index, batch, num_graphs: int, extra: torch.Tensor) -> torch.Tensor:
        from torch_geometric.nn import global_add_pool

        reverse = edge_index.flip(0)
        readout = [global_add_pool(x, batch, num_graphs)]
        for along, against in zip(self.along, self.against):
            x = F.relu(along(x, edge_index) + against(x, reverse))
            readout.append(global_add_pool(x, batch, num_graphs))
        return self.head(torch.cat([*readout, extra], dim=1)).squeeze(1) + extra @ self.extra_weight


class RankingPredictor:
    """Scores architectures of a space so that better ones score higher.

    Parameters
    ----------
    space:
        The space whose architectures are scored (fed to :class:`Featurizer`).
    hidden, layers:
        Width of the GIN layers and head, and number of GIN layers (the receptive field).
    loss, margin:
        ``"hinge"`` (with ``margin``) or ``"logistic"`` (``margin`` unused).
    epochs, lr:
        Full-batch Adam steps over all pairs, and their learning rate.
    seed:
        Seed of the weight initialisation, drawn without touching the global RNG.
    device:
        Where the model runs; default the CPU.
    validation_fraction:
        Share of the training architectures held out to stop early: :meth:`fit` keeps the
        weights of the epoch whose scores order the held-out architectures' pairs best (the
        earliest among ties); ``0`` trains on all of them for ``epochs`` epochs.
    extra_features:
        Number of per-architecture inputs (e.g. zero-cost proxy scores) joined to the readout;
        they are then required in every observation and in :meth:`score`.

    Attributes
    ----------
    losses:
        The mean pairwise loss of every training epoch of the last :meth:`fit`.
    validation_scores:
        With ``validation_fraction``: per epoch of the last :meth:`fit`, the share of the
        held-out pairs its scores order correctly (before the epoch's step); empty without.
    best_epoch:
        The number of steps behind the kept weights (``epochs`` without ``validation_fraction``).
    held_out:
        The indices of the observations held out by the last :meth:`fit` (empty without
        ``validation_fraction``).
    featurizer:
        The :class:`Featurizer` of the fitted predictor (``None`` before :meth:`fit`); its op
        vocabulary is ``space.ops``, or the ops of the training architectures when the space
        names none.
    """

    def __init__(self, space: Space, *, hidden: int = 64, layers: int = 3, loss: str = "hinge",
                 margin: float = 0.1, epochs: int = 200, lr: float = 1e-3, seed: int = 0,
                 device: torch.device | str | None = None, extra_features: int = 0,
                 validation_fraction: float = 0.0):
        if loss not in LOSSES:
            raise SettingError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        for name, value in (("hidden", hidden), ("layers", layers), ("epochs", epochs)):
            if not (isinstance(value, int) and value >= 1):
                raise SettingError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(extra_features, int) and extra_features >= 0):
            raise SettingError(f"extra_features must be an integer >= 0, got {extra_features!r}")
        if not (isinstance(validation_fraction, (int, float)) and 0 <= validation_fraction < 1):
            raise SettingError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
        if margin < 0 or lr <= 0:
            raise SettingError(f"need margin >= 0 and lr > 0, got margin={margin!r}, lr={lr!r}")
        self.space = space
        self.settings = dict(hidden=hidden, layers=layers, loss=loss, margin=float(margin), epochs=epochs,
                             lr=float(lr), seed=seed, extra_features=extra_features,
                             validation_fraction=float(validation_fraction))
        self.device = torch.device(device if device is not None else "cpu")
        self.losses: list[float] = []
        self.validation_scores: list[float] = []
        self.best_epoch = 0
        self.held_out: tuple[int, ...] = ()
        self.featurizer: Featurizer | None = None
        self._model: _GIN | None = None
        self._extra_mean = self._extra_std = torch.zeros(extra_features)

    def __repr__(self) -> str:
        s = self.settings
        return (f"RankingPredictor(space={self.space.name!r}, hidden={s['hidden']}, layers={s['layers']}, "
                f"loss={s['loss']!r}, margin={s['margin']}, epochs={s['epochs']}"
                + (f", validation_fraction={s['validation_fraction']})" if s["validation_fraction"] else ")"))

    def fit(self, observations: Iterable[Sequence]) -> RankingPredictor:
        """Train from scratch on ``(arch, epochs, accuracy)`` or ``(arch, epochs, accuracy,
        extra)`` observations, on the pairs :func:`pairs` keeps.

        Raises
        ------
        SettingError
            If there are no observations, or no pair among them to learn from.
        SpaceError
            If an architecture is not one of the space.
        ShapeError
            If ``extra`` is missing or has not ``extra_features`` values.
        """
        observations = list(observations)
        archs, _, _, extra = _unpack(observations, self.settings["extra_features"])
        if not archs:
            raise SettingError("fit needs observations (arch, epochs, accuracy); got none")
        archs = [self.space.validate(a) for a in archs]  # before any state changes
        order = pairs(observations)
        if not order:
            raise SettingError(f"the {len(archs)} observations give no pair to learn from: need two different "
                             "architectures with different accuracies, the better one trained for no more epochs")
        ops = self.space.ops if self.space.ops is not None else ops_present(archs)
        self.featurizer = Featurizer(self.space, ops)
        self._extra_mean = extra.mean(0)
        std = (extra - self._extra_mean).square().mean(0).sqrt()
        self._extra_std = torch.where(std > 0, std, 1.0)  # a constant input is centred, not scaled
        batch = self._batch(archs)
        extra = self._standardise(extra)
        order, held_order, self.held_out = self._split_pairs(order, len(archs))
        better, worse = torch.tensor(order, device=self.device).t()
        held_better, held_worse = torch.tensor(held_order, dtype=torch.long, device=self.device).reshape(-1, 2).t()

        s = self.settings
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s["seed"])
            model = _GIN(self.featurizer.num_features, s["hidden"], s["layers"], s["extra_features"])
        model.to(self.device).train()
        with torch.no_grad():  # start from the extras' ranking: their mean difference over the pairs
            direction = (extra[better] - extra[worse]).mean(0)
            model.extra_weight.copy_(direction / direction.norm().clamp_min(1e-12))
        optimiser = torch.optim.Adam(model.parameters(), lr=s["lr"])
        self.losses, self.validation_scores, self.best_epoch, best_state = [], [], s["epochs"], None
        for epoch in range(s["epochs"]):
            scores = model(batch.x, batch.edge_index, batch.batch, batch.num_graphs, extra)
            if held_order:  # the share of held-out pairs the weights of `epoch` steps order correctly
                ordered = (scores[held_better] > scores[held_worse]).double().mean().item()
                if ordered > max(self.validation_scores, default=-1.0):
                    self.best_epoch, best_state = epoch, {k: v.clone() for k, v in model.state_dict().items()}
                self.validation_scores.append(ordered)
            gap = scores[better] - scores[worse]
            loss = (F.relu(s["margin"] - gap) if s["loss"] == "hinge" else F.softplus(-gap)).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            self.losses.append(loss.item())
        if best_state is not None:
            model.load_state_dict(best_state)
        self._model = model.eval()
        return self

    def _split_pairs(self, order: list[tuple[int, int]], n: int) -> tuple[list, list, tuple[int, ...]]:
        """The training pairs, the held-out pairs and the held-out observations: a seeded draw of
        ``validation_fraction`` of the ``n``; pairs across the two parts are dropped. Without a
        held-out share, or when either part would have no pair, all pairs train and none is held out."""
        count = round(self.settings["validation_fraction"] * n)
        held = set(np.random.default_rng(self.settings["seed"]).permutation(n)[:count].tolist())
        train = [(i, j) for i, j in order if i not in held and j not in held]
        valid = [(i, j) for i, j in order if i in held and j in held]
        return (train, valid, tuple(sorted(held))) if train and valid else (order, [], ())

    def score(self, archs: Iterable[ArchGraph | Sequence[ArchGraph]], extra=None) -> np.ndarray:
        """One score per architecture, higher = predicted better (comparable only within one
        fitted predictor). ``extra``: ``len(archs) × extra_features`` values, when the
        predictor takes them.

        Raises
        ------
        RuntimeError
            If the predictor is not fitted.
        SpaceError
            If an architecture is not one of the space.
        """
        if self._model is None:
            raise RuntimeError("this RankingPredictor is not fitted: call fit(observations) or "
                               "RankingPredictor.load(path, space) first")
        archs = list(archs)
        extra = self._standardise(_extra_matrix(extra, len(archs), self.settings["extra_features"]))
        out = []
        with torch.no_grad():
            for start in range(0, len(archs), _CHUNK):
                batch = self._batch(archs[start:start + _CHUNK])
                out.append(self._model(batch.x, batch.edge_index, batch.batch, batch.num_graphs,
                                       extra[start:start + _CHUNK]))
        return torch.cat(out).double().cpu().numpy() if out else np.zeros(0)

    def save(self, path: str | Path) -> Path:
        """Write settings, op vocabulary, standardisation and weights to one torch file."""
        if self._model is None:
            raise RuntimeError("this RankingPredictor is not fitted: nothing to save; call fit(observations) first")
        path = Path(path)
        torch.save({"format": _FORMAT, "space": self.space.name, "settings": self.settings,
                    "ops": list(self.featurizer.ops), "extra_mean": self._extra_mean.cpu(),
                    "extra_std": self._extra_std.cpu(),
                    "state_dict": {k: v.cpu() for k, v in self._model.state_dict().items()}}, path)
        return path

    @classmethod
    def load(cls, path: str | Path, space: Space, *, device: torch.device | str | None = None) -> RankingPredictor:
        """Read a predictor written by :meth:`save`, for architectures of ``space``."""
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise SettingError(f"{path} is not a file written by RankingPredictor.save")
        if state["space"] != space.name:
            raise SpaceError(f"{path} holds a predictor for space {state['space']!r}, not {space.name!r}; "
                             f"load it with spaces.load({state['space']!r})")
        s = state["settings"]
        predictor = cls(space, device=device, **s)
        predictor.featurizer = Featurizer(space, state["ops"])
        predictor._extra_mean, predictor._extra_std = state["extra_mean"], state["extra_std"]
        model = _GIN(predictor.featurizer.num_features, s["hidden"], s["layers"], s["extra_features"])
        model.load_state_dict(state["state_dict"])
        predictor._model = model.to(predictor.device).eval()
        return predictor

    def _batch(self, archs: Sequence):
        from torch_geometric.data import Batch

        return Batch.from_data_list([self.featurizer(a) for a in archs]).to(self.device)

    def _standardise(self, extra: torch.Tensor) -> torch.Tensor:
        return ((extra - self._extra_mean) / self._extra_std).to(self.device)


def _unpack(observations: Iterable[Sequence], extra_features: int | None = None):
    """Architectures (tuples of cells), epochs, accuracies (numpy arrays) and the extra inputs
    (an ``n × extra_features`` tensor; not read when ``extra_features`` is ``None``)."""
    archs, epochs, accuracy, extra = [], [], [], []
    for k, o in enumerate(observations):
        if isinstance(o, (str, ArchGraph)) or len(o) not in (3, 4):
            raise ShapeError(f"observation {k} must be (arch, epochs, accuracy) or (arch, epochs, accuracy, "
                             f"extra), got {o!r}")
        arch, e, a = o[:3]
        if not math.isfinite(float(a)):
            raise SettingError(f"observation {k} has accuracy {a!r}; drop observations without a finite accuracy")
        archs.append((arch,) if isinstance(arch, ArchGraph) else tuple(arch))
        epochs.append(e)
        accuracy.append(float(a))
        extra.append(o[3] if len(o) == 4 else None)
    matrix = None
    if extra_features is not None:
        if extra_features and any(x is None for x in extra):
            raise ShapeError(f"this predictor takes extra_features={extra_features} values per architecture: "
                             "give observations (arch, epochs, accuracy, extra)")
        matrix = _extra_matrix([x if x is not None else () for x in extra], len(archs), extra_features)
    return archs, np.asarray(epochs, dtype=float), np.asarray(accuracy, dtype=float), matrix


def _extra_matrix(extra, n: int, width: int) -> torch.Tensor:
    """``extra`` as an ``n × width`` float tensor (``None`` is fine when ``width`` is 0)."""
    if extra is None:
        if width:
            raise ShapeError(f"this predictor takes extra_features={width} values per architecture: pass extra")
        return torch.zeros(n, 0)
    try:
        array = np.asarray(extra, dtype=np.float32)
    except ValueError as e:
        raise ShapeError(f"extra must be {n} rows of {width} numbers (extra_features={width}): {e}") from None
    if array.ndim == 1 and (width == 1 or n == 0):
        array = array.reshape(n, width)
    if array.shape != (n, width):
        raise ShapeError(f"expected extra of shape ({n}, {width}) (extra_features={width}), got {array.shape}")
    return torch.from_numpy(array)
