"""Evaluation stage: protocols, stored candidate sets, tie-aware ranks and metrics."""

from temarec.evaluation.evaluator import EvalResult, Evaluator
from temarec.evaluation.metrics import METRICS, metrics_from_ranks, rank_of_positive
from temarec.evaluation.protocol import Protocol, parse_protocol

__all__ = [
    "METRICS",
    "EvalResult",
    "Evaluator",
    "Protocol",
    "metrics_from_ranks",
    "parse_protocol",
    "rank_of_positive",
]
