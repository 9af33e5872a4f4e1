"""Data stage: the two-domain dataset model, loaders, the demo world and splits."""

from temarec.data.dataset import CDDataset, DatasetInfo
from temarec.data.errors import DataFormatError, DatasetNotFoundError
from temarec.data.ragged import Ragged
from temarec.data.registry import load_dataset
from temarec.data.splits import EvalSet, Split, get_split, leave_one_out

__all__ = [
    "CDDataset",
    "DataFormatError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "EvalSet",
    "Ragged",
    "Split",
    "get_split",
    "leave_one_out",
    "load_dataset",
]
