"""Chunked, vectorised evaluation of a model on an `EvalSet` under one protocol."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from temarec.data.dataset import DatasetInfo
from temarec.data.splits import EvalSet
from temarec.evaluation.candidates import domain_exclusion
from temarec.evaluation.metrics import metrics_from_ranks, rank_of_positive
from temarec.evaluation.protocol import Protocol


@dataclass
class EvalResult:
    protocol: str
    ranks: np.ndarray  # float [n], in EvalSet order
    target_domain: np.ndarray
    users: np.ndarray
    metrics: dict[str, dict[str, float]]  # domain name / "all" -> metric -> value

    def selection_score(self, metric: str = "NDCG@10") -> float:
        """Mean of the metric over the two domains (not over instances): both domains count equally."""
        doms = [k for k in self.metrics if k != "all"]
        return float(np.mean([self.metrics[d][metric] for d in doms]))


def check_scores(model, method: str, scores: torch.Tensor, want: tuple[int, int]) -> None:
    """A model's scores must have the shape asked for: `score_all` one column per item of the domain
    (not of the catalogue), `score_candidates` one per candidate. Anything else would rank the wrong
    items without an error."""
    if tuple(scores.shape) != want:
        what = "[batch, items of the domain]" if method == "score_all" else "[batch, candidates]"
        raise ValueError(
            f"{type(model).__name__}.{method} returned scores of shape {tuple(scores.shape)}; "
            f"expected {what} = {list(want)}"
        )


class Evaluator:
    """Ranks every instance's positive against the protocol's negatives in the target domain."""

    def __init__(
        self,
        info: DatasetInfo,
        eval_set: EvalSet,
        protocol: Protocol,
        candidates: np.ndarray | None = None,
        max_len: int = 50,
        batch_size: int = 512,
        ties: str = "pessimistic",
        exclude_history: bool = True,
    ):
        if isinstance(protocol, str):
            from temarec.evaluation.protocol import parse_protocol

            protocol = parse_protocol(protocol)
        if ties not in ("pessimistic", "half"):
            raise ValueError(f"ties must be 'pessimistic' or 'half', got {ties!r}")
        if not protocol.is_full and (
            candidates is None or candidates.shape != (len(eval_set), protocol.n_neg)
        ):
            raise ValueError(
                f"protocol {protocol.name} needs stored candidates of shape [n, {protocol.n_neg}]"
            )
        self.info, self.es, self.protocol = info, eval_set, protocol
        self.candidates = candidates
        self.max_len, self.batch_size, self.ties = max_len, batch_size, ties
        self.exclude_history = exclude_history
        self.seqs = eval_set.history.padded(max_len)

    @torch.no_grad()
    def evaluate(self, model) -> EvalResult:
        was_training = model.training
        model.eval()
        ranks = np.zeros(len(self.es), dtype=np.float64)
        info = self.info
        for d in (0, 1):
            idx = np.flatnonzero(self.es.target_domain == d)
            for start in range(0, len(idx), self.batch_size):
                rows = idx[start : start + self.batch_size]
                seq = torch.from_numpy(self.seqs[rows])
                target = torch.from_numpy(self.es.target[rows])
                if self.protocol.is_full:
                    scores = model.score_all(seq, d).float()
                    check_scores(model, "score_all", scores, (len(rows), int(info.domain_size[d])))
                    local = target - info.domain_offset[d]
                    pos = scores.gather(1, local[:, None]).squeeze(1)
                    valid = torch.ones_like(scores, dtype=torch.bool)
                    r, c = domain_exclusion(self.es, rows, info, d, self.exclude_history)
                    valid[torch.from_numpy(r), torch.from_numpy(c)] = False
                    rk = rank_of_positive(pos, scores, valid, self.ties)
                else:
                    cands = torch.cat([target[:, None], torch.from_numpy(self.candidates[rows])], dim=1)
                    scores = model.score_candidates(seq, d, cands).float()
                    check_scores(model, "score_candidates", scores, tuple(cands.shape))
                    rk = rank_of_positive(scores[:, 0], scores[:, 1:], None, self.ties)
                ranks[rows] = rk.numpy()
        model.train(was_training)
        metrics = {
            name: metrics_from_ranks(ranks[self.es.target_domain == d]) for d, name in enumerate(info.domains)
        }
        metrics["all"] = metrics_from_ranks(ranks)
        return EvalResult(self.protocol.name, ranks, self.es.target_domain, self.es.users, metrics)
