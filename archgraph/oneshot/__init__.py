"""One-shot architecture search on modules with Choices: bi-level training, its regularisers,
the DARTS supernet and its robust variants, selection, curvature and DSCD.

Everything here works on any module containing :class:`~archgraph.relax.Choice` objects (a
FaDE hyper-architecture, a DARTS supernet, a toy ``nn.Sequential``): the architecture
parameters are the Choices' ``alpha``, the weights everything else.
"""

from .bilevel import BilevelResult, train_bilevel
from .dscd import DSCD
from .early_stop import (
    DROP_PATH_PROBS, L2_FACTORS, DartsAdaResult, DartsES, EigenvalueTracker, RDartsCandidate, RDartsResult,
    chain_callbacks, darts_ada, rdarts, rdarts_dp,
)
from .hessian import arch_eigenvalue, dominant_eigenvalue, hessian
from .methods import DARTS_TRAINING, METHODS, SELECTIONS, DartsSearch, Method, retrain, search_darts
from .nb201 import NB201SearchCell, NB201Supernet, build_nb201_supernet
from .perturb import Decision, PerturbationResult, perturbation_select
from .progressive import ProgressiveResult, train_progressive
from .regularize import Cutout, DirichletKL, MaxNorm, ZeroOneLoss
from .rsws import RandomSearchResult, random_cells, random_search_ws
from .select import magnitude, threshold
from .supernet import CELL_TYPES, MixedOp, SearchCell, Supernet, build_supernet

__all__ = [
    "CELL_TYPES", "DARTS_TRAINING", "DROP_PATH_PROBS", "DSCD", "L2_FACTORS", "METHODS", "SELECTIONS",
    "BilevelResult", "Cutout", "DartsAdaResult", "DartsES", "DartsSearch", "Decision", "DirichletKL",
    "EigenvalueTracker", "MaxNorm", "Method", "MixedOp", "NB201SearchCell", "NB201Supernet", "PerturbationResult", "ProgressiveResult", "RDartsCandidate", "RDartsResult",
    "RandomSearchResult", "SearchCell", "Supernet", "ZeroOneLoss",
    "arch_eigenvalue", "build_nb201_supernet", "build_supernet", "chain_callbacks", "darts_ada", "dominant_eigenvalue", "hessian",
    "magnitude", "perturbation_select", "random_cells", "random_search_ws", "rdarts", "rdarts_dp", "retrain", "search_darts",
    "threshold", "train_bilevel", "train_progressive",
]
