"""Weight sharing between sampled MLPs by identical consecutive layer pairs ("bigrams").

The controller-NAS seed (Minutoli & Ciranni, NAS overview §4) initialises a newly sampled
MLP with weights already trained in earlier architectures: a dense layer's weight matrix is
fixed in shape by the layer before it and by itself, so the trained weights of the pair
*(previous layer, this layer)* fit wherever the same pair occurs again, at any depth.

:class:`SharedWeights` keeps, for every such pair, the trial that trained it last and the
names of that layer's parameters in the trial's checkpoint. It holds references, not
tensors: :meth:`SharedWeights.init_from` turns a new architecture into the mapping
``{parameter: [source trial id, source parameter]}`` of a trial's
:class:`~archgraph.trial.TrainArchitecture` task, which the evaluator loads from the source
trials' checkpoints before training.

Pairs are formed over the layers that carry weights: a dropout layer has none and keeps the
width, so it is skipped (as in the seed's generator); the first dense layer pairs with
``"input"`` and the output layer is the pair *(last dense layer, "head")* (``"input"`` when
there is none). Within a run the task fixes the input width and the number of classes, so
equal pairs always have equal shapes.

Examples
--------
>>> store = SharedWeights()
>>> store.add(3, ["dense(64, relu)", "dropout(0.2)", "dense(32, tanh)"])
>>> init = store.init_from(["dense(64, relu)", "dense(16, elu)"])
>>> init["layers.1.0.weight"], sorted(init)
([3, 'layers.1.0.weight'], ['layers.1.0.bias', 'layers.1.0.weight'])
>>> sorted(store.init_from(["dense(8, relu)", "dense(32, tanh)"]))  # only (32, tanh) -> head was trained
['head.bias', 'head.weight']
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..embody import build_mlp, mlp_graph

__all__ = ["SharedWeights", "layer_pairs"]

#: the pseudo-tokens that open and close a chain's pairs
INPUT, HEAD = "input", "head"


def layer_pairs(layers: Sequence[str]) -> list[tuple[tuple[str, str], list[str]]]:
    """Each weighted layer of an MLP chain as ``((previous token, token), parameter names)``.

    The parameter names are those of :func:`archgraph.embody.build_mlp`'s module, read from a
    copy built on the ``meta`` device (no memory, no random numbers drawn).

    >>> layer_pairs(["dropout(0.2)", "dense(8, elu)"])
    [(('input', 'dense(8, elu)'), ['layers.2.0.weight', 'layers.2.0.bias']), (('dense(8, elu)', 'head'), ['head.weight', 'head.bias'])]
    """
    with torch.device("meta"):
        net = build_mlp(mlp_graph(list(layers)), input_shape=(1,), num_classes=3)
    pairs, previous = [], INPUT
    for index, (token, layer) in enumerate(zip(layers, list(net.layers)[1:]), start=1):  # layers[0]: Flatten
        names = [f"layers.{index}.{name}" for name, _ in layer.named_parameters()]
        if names:
            pairs.append(((previous, token), names))
            previous = token
    pairs.append(((previous, HEAD), [f"head.{name}" for name, _ in net.head.named_parameters()]))
    return pairs


class SharedWeights:
    """Which trial trained each layer pair last, and under which parameter names.

    ``add`` a trained architecture (its checkpoint then holds the freshest weights of its
    pairs, as the seed overwrites its store entry by entry); ``init_from`` maps a new
    architecture's parameters onto the stored ones.
    """

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple[int, list[str]]] = {}

    def add(self, trial_id: int, layers: Sequence[str]) -> None:
        """Record that trial ``trial_id``, whose checkpoint exists, trained ``layers``."""
        for pair, names in layer_pairs(layers):
            self.entries[pair] = (trial_id, names)

    def init_from(self, layers: Sequence[str]) -> dict[str, list]:
        """``{parameter: [source trial id, source parameter]}`` for the pairs of ``layers``
        the store holds; parameters of unseen pairs are absent (they keep their fresh
        initialisation)."""
        init = {}
        for pair, names in layer_pairs(layers):
            if pair in self.entries:
                source, source_names = self.entries[pair]
                init.update({name: [source, source_name] for name, source_name in zip(names, source_names)})
        return init

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"SharedWeights(pairs={len(self)})"
