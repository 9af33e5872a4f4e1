"""Train/validation/test splits: leave-one-out on the mixed sequence, or a dataset's published split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from temarec.data.dataset import CDDataset
from temarec.data.ragged import Ragged


@dataclass
class EvalSet:
    """Evaluation instances: a history, the next item (target) and its domain.

    `exclude` lists, per instance, the items the user is known to have interacted with: by default they
    are never drawn as negatives (the positive is always scored).
    """

    users: np.ndarray  # int64 [n] user index in the dataset
    history: Ragged  # time-ordered global ids before the target
    target: np.ndarray  # int64 [n]
    target_domain: np.ndarray  # int8 [n]
    exclude: Ragged

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, rows: np.ndarray) -> EvalSet:
        return EvalSet(
            self.users[rows],
            self.history.take(rows),
            self.target[rows],
            self.target_domain[rows],
            self.exclude.take(rows),
        )


@dataclass
class Split:
    name: str
    train: Ragged  # training sequences: every next item is a training target
    valid: EvalSet
    test: EvalSet


def leave_one_out(ds: CDDataset) -> Split:
    """Last interaction = test, the one before = validation, the rest = training (per user, by time).

    Users with fewer than 3 interactions only train. The target's domain is the domain of that item.
    """
    seqs = ds.sequences
    lengths = seqs.lengths
    item_domain = ds.item_domain
    ev = np.flatnonzero(lengths >= 3)
    ends = seqs.offsets[1:]
    train = seqs.truncate(np.where(lengths >= 3, lengths - 2, lengths))
    test_target = seqs.values[ends[ev] - 1]
    valid_target = seqs.values[ends[ev] - 2]
    full = seqs.take(ev)
    valid = EvalSet(
        users=ev,
        history=full.truncate(full.lengths - 2),
        target=valid_target,
        target_domain=item_domain[valid_target],
        # what the user had done by then: not the test item, or selection would see it (it used to:
        # a validation ranking hid the test item when it was of the target's domain)
        exclude=full.truncate(full.lengths - 1),
    )
    test = EvalSet(
        users=ev,
        history=full.truncate(full.lengths - 1),
        target=test_target,
        target_domain=item_domain[test_target],
        exclude=full,
    )
    return Split("loo", train, valid, test)


SPLITS = ("auto", "loo", "published")

#: How validation instances are ranked; recorded in every metrics file. 2 (session 19): a validation
#: ranking excludes only what the user did before its target, and its sampled negatives have their own
#: random stream. Rule 1 (runs without the field) also excluded the user's test item when it was of the
#: target's domain, so selection saw one bit of test data per such user.
VALIDATION_RULE = 2


def get_split(ds: CDDataset, name: str = "auto") -> Split:
    """`auto` takes the dataset's published split where it has one, else leave-one-out."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; choose one of {SPLITS}")
    if name == "published" or (name == "auto" and ds.published_split is not None):
        if ds.published_split is None:
            raise ValueError(f"dataset {ds.name!r} has no published split; use --split loo")
        split = ds.published_split
    else:
        split = leave_one_out(ds)
    if len(split.valid) == 0 or len(split.test) == 0:
        why = (
            "a user needs at least 3 interactions"
            if split.name == "loo"
            else "its published split lists none"
        )
        raise ValueError(
            f"dataset {ds.name!r}: no user can be evaluated ({len(split.valid)} validation and "
            f"{len(split.test)} test instances; {why}), so there is nothing to select on or to report"
        )
    return split  # type: ignore[return-value]
