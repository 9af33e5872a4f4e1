"""Ranking protocols: `full` (every item of the target domain) or `uniN` (N sampled negatives)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    name: str
    n_neg: int | None  # None for full ranking

    @property
    def is_full(self) -> bool:
        return self.n_neg is None


def parse_protocol(name: str) -> Protocol:
    name = name.strip().lower()
    if name == "full":
        return Protocol("full", None)
    m = re.fullmatch(r"uni(\d+)", name)
    if m and int(m.group(1)) > 0:
        n = int(m.group(1))
        return Protocol(f"uni{n}", n)  # 'uni0100' is uni100: one name per protocol, for files and pairing
    raise ValueError(f"unknown protocol {name!r}: use 'full' or 'uniN' (e.g. uni999, uni100)")
