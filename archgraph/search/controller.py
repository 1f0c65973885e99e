"""Controller NAS for MLPs: an LSTM samples layer tokens, REINFORCE trains it (Minutoli &
Ciranni, NAS overview §4–5 and appendix; after Zoph & Le 2017).

Each *controller epoch* (a round) the LSTM samples ``batch`` MLPs of the ``mlp`` space token
by token (``dense(width, activation)`` or ``dropout(0.2)``) until it emits the end token or
reaches ``max_layers``; each is trained as a trial; when the round's results are in, the
controller is trained on *all* architectures seen so far (§4): ``controller_steps`` Adam
steps (lr 0.01, Keras-style decay ``lr / (1 + 0.1·t)``) on the REINFORCE loss with a
baseline and discounting (appendix),

    L = -1/N Σ_i [Σ_t γ^(T_i - t) (acc_i - b) log π(a_it | a_i,<t) + β Σ_t H(π(· | a_i,<t))],

where the reward ``acc_i - b`` (validation accuracy less the baseline) arrives at the end
token, step ``T_i``, and reaches earlier tokens discounted by ``γ``; ``β`` (``entropy_weight``,
0 by default) weighs an entropy bonus on the policy at each step of the observed sequences,
which keeps it from collapsing onto its first good samples (ENAS, Pham et al. 2018, adds the
sampled sequence's entropy to the reward with weight 1e-4, its code's ``controller_entropy_weight``;
this is the same term in expectation, computed exactly at each step). With ``uniform_prior`` a fresh controller samples as random search
does (:class:`LSTMController`); without it, it stops with probability about 1/(tokens + 1)
per step, so most of its first samples have ``max_layers`` layers. With ``predictor`` an
accuracy predictor, a dense layer with a sigmoid on the LSTM state after the last token
(§4.2), is trained jointly on the observed accuracies (mean squared error); with
``skip_below`` a sample it predicts below that accuracy is not trained. The controller never
proposes an architecture twice (it resamples; see :class:`ControllerSearch`). With
``share_weights`` a new MLP starts from the trained weights of the layer pairs it shares with
earlier trials (:mod:`archgraph.search.shared_weights`).

Every random draw comes from one :class:`torch.Generator` seeded with ``seed``, and the
controller learns only at round boundaries, from results ordered by trial id: a run replays
exactly (on the same machine and torch thread count). A new MLP shares the weights of the trials
learnt when it is asked: by default those told so far, which depend on the number of workers, with
a ``lag`` the same whatever it is (:class:`~archgraph.search.base.Lagged`).

A failed or pruned trial gives the controller no reward and the predictor no target (it has no
final accuracy; a failure says more about the run than about the architecture), and lends no
weights (it left no checkpoint); its architecture still counts as proposed, so it is not
sampled again, and its round ends when all the round's trials are told, failures included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..embody import mlp_graph, mlp_layers
from ..errors import SettingError, SpaceError
from ..spaces import Space
from ..trial import Result, TrainArchitecture, Trial
from .base import Lagged
from .shared_weights import SharedWeights

__all__ = ["ControllerSearch", "LSTMController"]


class LSTMController(nn.Module):
    """The policy: an LSTM cell reading the previous token, a softmax over the next one.

    Tokens ``0 .. num_tokens - 1`` are layers, ``num_tokens`` is the end token (and, as an
    input, the start token). At step ``t`` (``t`` layers chosen so far) the end token is
    allowed from ``min_layers`` on and is the only choice at ``max_layers``; π is the
    softmax over the allowed tokens. ``predictor`` is the accuracy head on the state after
    the last layer (the state that chose the end token).

    With ``uniform_prior`` the policy starts as random search: the output layer starts at
    zero (every allowed token equally likely) and the end token's logit at step ``t`` carries
    a fixed offset ``log(num_tokens / (max_layers - t))``, so the fresh controller stops there
    with probability ``1 / (max_layers - t + 1)`` (one over the depths left): its depth is
    uniform over ``min_layers .. max_layers`` and its layers uniform over the tokens. The
    offset stays as training moves the logits.

    Parameters are drawn from ``generator`` (PyTorch's default distributions), the global
    RNG is left alone.

    Examples
    --------
    >>> policy = LSTMController(5, min_layers=1, max_layers=3, hidden=8, generator=torch.Generator().manual_seed(0))
    >>> tokens, log_prob, state = policy.sample(torch.Generator().manual_seed(1))
    >>> 1 <= len(tokens) <= 3 and torch.allclose(policy.log_prob([tokens])[0][0], log_prob)
    True
    """

    def __init__(self, num_tokens: int, *, min_layers: int, max_layers: int, hidden: int = 128,
                 generator: torch.Generator, uniform_prior: bool = False):
        super().__init__()
        if not 1 <= min_layers <= max_layers:
            raise SettingError(f"need 1 <= min_layers <= max_layers, got {min_layers} and {max_layers}")
        self.num_tokens, self.min_layers, self.max_layers = num_tokens, min_layers, max_layers
        self.embed = nn.Embedding(num_tokens + 1, hidden, _weight=torch.empty(num_tokens + 1, hidden))
        with torch.device("meta"):  # shapes only: the weights are drawn from `generator` below
            self.cell = nn.LSTMCell(hidden, hidden)
            self.out = nn.Linear(hidden, num_tokens + 1)
            self.predictor = nn.Linear(hidden, 1)
        self.to_empty(device="cpu")
        with torch.no_grad():
            self.embed.weight.normal_(generator=generator)
            for module in (self.cell, self.out, self.predictor):
                fan_in = module.weight.shape[1] if module is not self.cell else module.hidden_size
                for p in module.parameters():
                    p.uniform_(-fan_in ** -0.5, fan_in ** -0.5, generator=generator)
            if uniform_prior:  # drawn all the same, so the generator goes on as without the prior
                for p in self.out.parameters():
                    p.zero_()
        self.end_offset = torch.zeros(max_layers + 1)  # per step t; at max_layers the end token is forced
        if uniform_prior:
            self.end_offset[:max_layers] = torch.log(num_tokens / (max_layers - torch.arange(max_layers)))

    @property
    def end(self) -> int:
        return self.num_tokens

    def allowed(self, step: int) -> torch.Tensor:
        """Boolean mask of the tokens allowed after ``step`` layers."""
        mask = torch.full((self.num_tokens + 1,), step < self.max_layers)
        mask[self.end] = step >= self.min_layers
        return mask

    def step(self, previous: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, t: int):
        """Logits of the next token (masked to the allowed ones) and the new state."""
        h, c = self.cell(self.embed(previous), state)
        logits = self.out(h)
        logits = torch.cat([logits[..., :self.end], logits[..., self.end:] + self.end_offset[t]], -1)
        return logits.masked_fill(~self.allowed(t), -math.inf), (h, c)

    @torch.no_grad()
    def sample(self, generator: torch.Generator, novel=None):
        """Draw a sequence; returns ``(tokens, log π(tokens), final hidden state)``.

        ``novel(prefix)``, when given, is a boolean mask of the tokens that still lead to an
        unseen sequence; they are drawn from π restricted to that mask (the log-probability
        returned is still π's).
        """
        tokens: list[int] = []
        previous, state, log_prob = torch.tensor([self.end]), None, torch.zeros(())
        while True:  # ends: the end token is the only choice at max_layers
            logits, state = self.step(previous, state, len(tokens))
            log_pi = logits[0].log_softmax(-1)
            draw = log_pi if novel is None else log_pi.masked_fill(~novel(tuple(tokens)), -math.inf)
            token = int(torch.multinomial(draw.softmax(-1), 1, generator=generator))
            log_prob = log_prob + log_pi[token]
            if token == self.end:
                return tuple(tokens), log_prob, state[0][0]
            tokens.append(token)
            previous = torch.tensor([token])

    def log_prob(self, sequences: Sequence[Sequence[int]], discount: float = 1.0):
        """Per sequence: ``Σ_t discount^(T - t) log π(a_t)`` over its tokens and end token
        (step ``T``), ``Σ_t H(π(· | a_<t))`` over the same steps, and the hidden state after
        its last layer; teacher-forced, batched."""
        lengths = torch.tensor([len(s) for s in sequences])
        steps = int(lengths.max()) + 1
        chosen = torch.full((len(sequences), steps), self.end)
        for i, s in enumerate(sequences):
            chosen[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        previous, state = torch.full((len(sequences),), self.end), None
        total, entropy = torch.zeros(len(sequences)), torch.zeros(len(sequences))
        final = torch.zeros(len(sequences), self.cell.hidden_size)
        for t in range(steps):
            logits, state = self.step(previous, state, t)
            log_all = logits.log_softmax(-1)
            log_pi = log_all.gather(1, chosen[:, t:t + 1])[:, 0]
            active = t <= lengths
            weight = discount ** (lengths - t).clamp(min=0).to(total.dtype)
            total = total + weight * torch.where(active, log_pi, torch.zeros(()))  # padding may be -inf
            h = torch.distributions.Categorical(logits=logits).entropy()  # masked tokens: 0 · log 0 = 0
            entropy = entropy + torch.where(active, h, torch.zeros(()))
            final = torch.where((t == lengths)[:, None], state[0], final)
            previous = chosen[:, t]
        return total, entropy, final

    def predict(self, state: torch.Tensor) -> torch.Tensor:
        """Predicted validation accuracy of the architecture whose final state is ``state``."""
        return torch.sigmoid(self.predictor(state))[..., 0]


class ControllerSearch(Lagged):
    """Ask/tell controller NAS on an ``mlp`` space (see the module docstring).

    Parameters
    ----------
    space:
        A space of the ``mlp`` embodiment; its ``ops`` are the layer tokens, its vertex
        bounds the number of layers.
    epochs, seed:
        Training epochs of each trial; seed of the controller (the run gives the trials theirs).
    hidden:
        LSTM state size (128, §5).
    batch:
        Architectures per controller epoch (10, §5).
    lr, lr_decay:
        Adam learning rate of the controller and its Keras-style decay
        ``lr / (1 + lr_decay·t)`` over the optimiser steps (0.01 and 0.1, §5).
    baseline:
        REINFORCE baseline: a fixed accuracy (the seed's example uses 0.5) or ``"mean"``,
        the mean accuracy of the architectures trained so far (the seed z-scores its
        rewards to make about half of them positive; this keeps the same intent and the
        reward's scale).
    discount:
        γ, the discount of the reward towards earlier tokens (appendix).
    controller_steps:
        Optimiser steps per controller epoch, each over all architectures seen so far.
    uniform_prior:
        Start as random search: a fresh controller draws the depth uniformly over the allowed
        ones and each layer uniformly (off by default: the seed's plain LSTM, so earlier runs replay).
    entropy_weight:
        β of the entropy bonus in the loss (0: none, as before; ENAS uses 1e-4).
    predictor, skip_below:
        Train the accuracy predictor (§4.2); skip (never train) samples it predicts below
        ``skip_below`` once it has been trained (``None``: never skip).
    share_weights:
        Initialise each new MLP from the trained weights of the layer pairs it shares with
        earlier trials (the trial's task, :class:`~archgraph.trial.TrainArchitecture`'s ``init_from``).
    max_layers:
        At most this many layers (default and limit: the space's ``max_vertices``).
    max_resamples:
        Draws per ask that may be rejected (a duplicate, or skipped by the predictor)
        before the next architecture is drawn from π restricted to unseen sequences and
        proposed whatever its prediction; that always succeeds while the space is not
        exhausted, and then ``ask`` returns ``None``.

    Examples
    --------
    >>> from archgraph import spaces
    >>> search = ControllerSearch(spaces.load("mlp"), epochs=1, seed=0, batch=2, hidden=16)
    >>> a, b = search.ask(), search.ask()
    >>> search.ask() is None  # the round's results are awaited
    True
    >>> for trial, acc in ((a, 0.9), (b, 0.3)):
    ...     search.tell(trial, Result(trial.id, {"val_accuracy": acc}, checkpoint=f"checkpoints/trial-{trial.id}.pt"))
    >>> c = search.ask()
    >>> c.info["round"], "predicted" in c.info, search.updates  # a new round, after one controller update
    (1, True, 1)
    """

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, hidden: int = 128, batch: int = 10,
                 lr: float = 0.01, lr_decay: float = 0.1, baseline: float | str = "mean", discount: float = 0.9,
                 controller_steps: int = 10, uniform_prior: bool = False, entropy_weight: float = 0.0,
                 predictor: bool = True, skip_below: float | None = None, share_weights: bool = True,
                 max_layers: int | None = None, max_resamples: int = 100, lag: int | None = None):
        if space.embodiment != "mlp" or not space.ops:
            raise SpaceError(f"the controller samples MLP layer tokens; space {space.name!r} has embodiment "
                             f"{space.embodiment!r} and ops {space.ops}; use an 'mlp' space such as the shipped 'mlp'")
        limit = space.max_vertices or 10
        max_layers = limit if max_layers is None else max_layers
        if not space.min_vertices <= max_layers <= limit:
            raise SettingError(f"max_layers must lie in {space.min_vertices}..{limit} (the space's), got {max_layers}")
        if batch < 1 or controller_steps < 0 or max_resamples < 0 or not entropy_weight >= 0:
            raise SettingError(f"need batch >= 1, controller_steps >= 0, max_resamples >= 0, entropy_weight >= 0, "
                               f"got {batch}, {controller_steps}, {max_resamples}, {entropy_weight}")
        if not (baseline == "mean" or isinstance(baseline, (int, float))):
            raise SettingError(f"baseline is an accuracy or 'mean', got {baseline!r}")
        super().__init__(lag)
        self.space, self.epochs, self.seed = space, epochs, seed
        self.batch, self.baseline, self.discount, self.entropy_weight = batch, baseline, discount, entropy_weight
        self.controller_steps, self.use_predictor, self.skip_below = controller_steps, predictor, skip_below
        self.max_resamples = max_resamples
        self.tokens = tuple(space.ops)
        self.generator = torch.Generator().manual_seed(seed)
        self.controller = LSTMController(len(self.tokens), min_layers=space.min_vertices, max_layers=max_layers,
                                         hidden=hidden, generator=self.generator, uniform_prior=uniform_prior)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda t: 1 / (1 + lr_decay * t))
        self.shared = SharedWeights() if share_weights else None
        self.observed: dict[int, tuple[tuple[int, ...], float]] = {}  # trial id -> (tokens, val accuracy)
        self.skipped: list[tuple[tuple[str, ...], float]] = []  # (layers, predicted accuracy)
        self.seen: set[tuple[int, ...]] = set()
        self._under: dict[tuple[int, ...], int] = {}  # prefix -> seen sequences that extend it
        self.round, self.updates = 0, 0
        self._asked_in_round, self._pending = 0, 0  # proposed in this round; proposed, not learnt

    def _propose(self) -> Trial | None:
        if self._asked_in_round == self.batch:
            if self._pending:
                return None  # the controller epoch's results are awaited
            self.round, self._asked_in_round = self.round + 1, 0
        drawn = self._draw()
        if drawn is None:
            return None  # every architecture of the space was proposed
        tokens, predicted = drawn
        layers = [self.tokens[i] for i in tokens]
        info = {"layers": layers, "round": self.round}
        if predicted is not None:
            info["predicted"] = round(predicted, 6)
        init = self.shared.init_from(layers) if self.shared is not None else {}
        self._asked_in_round += 1
        self._pending += 1
        return Trial.propose(mlp_graph(layers), self.epochs, info=info, task=TrainArchitecture(init_from=init))

    def _learn(self, trial: Trial, result: Result) -> None:
        self._pending -= 1
        layers = mlp_layers(trial.arch[0])
        if result.scored:
            self.observed[trial.id] = (tuple(self.tokens.index(op) for op in layers), result.score)
        if self.shared is not None and result.checkpoint is not None:
            self.shared.add(trial.id, layers)
        if not self._pending and self._asked_in_round == self.batch:
            self._train_controller()

    def log_prob(self, layers: Sequence[str]) -> float:
        """log π of an architecture given as its layer ops (the sum over its tokens and end token)."""
        with torch.no_grad():
            return float(self.controller.log_prob([[self.tokens.index(op) for op in layers]])[0][0])

    def _draw(self) -> tuple[tuple[int, ...], float | None] | None:
        """A new token sequence and its predicted accuracy (``None`` without a trained
        predictor), or ``None`` when the space is exhausted."""
        if len(self.seen) == self._completions(0):
            return None
        for _ in range(self.max_resamples):
            tokens, _, state = self.controller.sample(self.generator)
            if tokens in self.seen:
                continue
            predicted = self._predicted(state)
            self._see(tokens)
            if self.skip_below is None or predicted is None or predicted >= self.skip_below:
                return tokens, predicted
            self.skipped.append((tuple(self.tokens[i] for i in tokens), predicted))
            if len(self.seen) == self._completions(0):
                return None
        tokens, _, state = self.controller.sample(self.generator, novel=self._novel)
        self._see(tokens)
        return tokens, self._predicted(state)

    def _predicted(self, state: torch.Tensor) -> float | None:
        if not (self.use_predictor and self.updates):
            return None
        with torch.no_grad():
            return float(self.controller.predict(state))

    def _see(self, tokens: tuple[int, ...]) -> None:
        self.seen.add(tokens)
        for k in range(len(tokens) + 1):
            self._under[tokens[:k]] = self._under.get(tokens[:k], 0) + 1

    def _completions(self, k: int) -> int:
        """How many sequences of the space extend a given prefix of ``k`` tokens."""
        c = self.controller
        return sum(c.num_tokens ** (n - k) for n in range(max(k, c.min_layers), c.max_layers + 1))

    def _novel(self, prefix: tuple[int, ...]) -> torch.Tensor:
        """Tokens after ``prefix`` that still lead to an unseen sequence."""
        full = self._completions(len(prefix) + 1)
        mask = torch.tensor([self._under.get(prefix + (i,), 0) < full for i in range(len(self.tokens))] + [True])
        mask[-1] = prefix not in self.seen
        return mask

    def _train_controller(self) -> None:
        """``controller_steps`` steps on every architecture observed so far, in trial order."""
        data = [self.observed[i] for i in sorted(self.observed)]
        if not data:
            return
        sequences = [tokens for tokens, _ in data]
        accuracy = torch.tensor([acc for _, acc in data])
        for _ in range(self.controller_steps):
            self.optimizer.zero_grad()
            self.loss(sequences, accuracy).backward()
            self.optimizer.step()
            self.schedule.step()
        self.updates += 1

    def loss(self, sequences: Sequence[Sequence[int]], accuracy: torch.Tensor) -> torch.Tensor:
        """The controller's loss on token sequences and their validation accuracies: REINFORCE
        with the baseline and discount, less the entropy bonus, plus the predictor's squared error."""
        baseline = accuracy.mean() if self.baseline == "mean" else torch.tensor(float(self.baseline))
        discounted, entropy, state = self.controller.log_prob(sequences, self.discount)
        loss = -((accuracy - baseline) * discounted + self.entropy_weight * entropy).mean()
        if self.use_predictor:
            loss = loss + ((self.controller.predict(state) - accuracy) ** 2).mean()
        return loss

    def __repr__(self) -> str:
        return (f"ControllerSearch({self.space.name!r}, epochs={self.epochs}, seed={self.seed}, batch={self.batch}, "
                f"max_layers={self.controller.max_layers})")
