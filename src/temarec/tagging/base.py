"""The tagging interface every backend implements.

A backend turns items (title, description, domain) into short lists of tags. LLM backends also take a
prompt and a pass (`generate`, or `refine` with the first pass's tags); the `file` backend ignores both.
The runner (not the backend) handles caching, sharding, progress and failure accounting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Pass = Literal["generate", "refine"]


@dataclass(frozen=True)
class TagRequest:
    """One item to tag. `previous` holds the first pass's tags when `pass_ == "refine"`."""

    item_id: int  # global temarec item id (1..N)
    key: str  # the source's item key (asin or dataset id)
    domain: str  # domain name, e.g. "Food"
    title: str | None
    description: str | None
    previous: tuple[str, ...] = ()


@dataclass
class TagResult:
    """A backend's answer for one request: tags (best first) with optional weights, or a failure reason."""

    item_id: int
    tags: list[str] = field(default_factory=list)
    weights: list[float] | None = None  # model relevance in [0, 1], same length as tags, if known
    raw: str = ""  # the model's raw text, kept for auditing
    error: str | None = None  # set when the item failed after repair and retries
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.tags)


@runtime_checkable
class TagBackend(Protocol):
    """What the runner needs from a backend."""

    #: stable identity of the model and its settings, part of every cache key
    identity: str

    def tag(self, requests: list[TagRequest], pass_: Pass = "generate") -> list[TagResult]:
        """Tags for each request, in order. Must not raise for one bad item: return a failed result."""
        ...

    def close(self) -> None:
        """Free model memory, sessions, servers."""
        ...


class BackendFatalError(RuntimeError):
    """A problem no retry fixes (bad key, unknown model, missing file): the runner stops instead of
    recording every remaining item as failed."""
