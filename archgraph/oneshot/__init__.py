"""One-shot architecture search on modules with Choices: bi-level training and its regularisers.

Everything here works on any module containing :class:`~archgraph.relax.Choice` objects (a
FaDE hyper-architecture, a DARTS supernet, a toy ``nn.Sequential``): the architecture
parameters are the Choices' ``alpha``, the weights everything else.
"""

from .bilevel import BilevelResult, train_bilevel
from .regularize import MaxNorm

__all__ = ["BilevelResult", "MaxNorm", "train_bilevel"]
