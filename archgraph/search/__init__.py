"""Searches as ask/tell strategies, driven by a Runner over an evaluator and a store."""

from ..trial import OBJECTIVE, Result, Trial, TrialState
from .base import Strategy, TrialNumbers, asking, trial_seed
from .controller import ControllerSearch
from .encoding import CategoricalEncoding, DartsEncoding, NB201Encoding, encoding_for
from .evolution import RegularizedEvolution
from .feature_search import BayesianFeatureSearch, FeatureDomain, RandomFeatureSearch, cell_feature_space, search_domain
from .nosh import NOSH, PredictorSearch, SuccessiveHalving, pyramid_budgets
from .prune import PRUNERS, MedianPruner
from .runner import Budget, ResumeError, Runner, TooManyFailures
from .session import STRATEGIES, SearchConfig, SearchOutcome, resume, search

__all__ = [
    "OBJECTIVE",
    "PRUNERS",
    "STRATEGIES",
    "NOSH",
    "BayesianFeatureSearch",
    "Budget",
    "CategoricalEncoding",
    "ControllerSearch",
    "DartsEncoding",
    "FeatureDomain",
    "MedianPruner",
    "NB201Encoding",
    "PredictorSearch",
    "RandomFeatureSearch",
    "RegularizedEvolution",
    "Result",
    "ResumeError",
    "Runner",
    "SearchConfig",
    "SearchOutcome",
    "Strategy",
    "SuccessiveHalving",
    "TooManyFailures",
    "Trial",
    "TrialNumbers",
    "TrialState",
    "asking",
    "cell_feature_space",
    "encoding_for",
    "resume",
    "pyramid_budgets",
    "search",
    "search_domain",
    "trial_seed",
]
