"""Import precomputed tags (a JSON object: item id -> list of tags) as a tagging source.

Ids are matched against the dataset's source keys (`items["key"]`, e.g. URLLM's `idAfter` for
amazon-art-office, ASINs for amazon-food-kitchen) or, with `id_space="item_id"`, against temarec's global
ids. Entries pass the same checks as model answers (`FILE_RULES`: the first 12 usable tags are kept, a
list of more than 60 is rejected, a tag has at most 48 characters and 6 words); entries that are strings
(raw model output that never parsed) are parsed and repaired like a model's answer, refusals recorded as
failures. An id given twice is an error; ids that name no item are counted (`require_overlap`). Items
without a title or description keep their imported tags: the file needs no text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from temarec.tagging.base import BackendFatalError, Pass, TagRequest, TagResult
from temarec.tagging.parse import MISSING, NOT_JSON, TagRules, check_tags, parse_tags

#: imported lists are longer and less curated than our prompts ask for
FILE_RULES = TagRules(max_tags=12, hard_max_tags=60, max_tag_chars=48, max_tag_words=6)

MAX_FILE_BYTES = 512 * 1024 * 1024


class FileBackend:
    """A `TagBackend` reading tags from a JSON file; no model, no prompts, no refinement."""

    supports_refine = False
    needs_text = False  # tags come from the file, so items without text are looked up too
    prompt_identity = "-"

    def __init__(
        self,
        path: str | Path,
        id_space: Literal["key", "item_id"] = "key",
        rules: TagRules | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise BackendFatalError(f"tag file {self.path} not found")
        if self.path.stat().st_size > MAX_FILE_BYTES:
            raise BackendFatalError(f"tag file {self.path} is larger than {MAX_FILE_BYTES >> 20} MiB")
        if id_space not in ("key", "item_id"):
            raise ValueError("id_space must be 'key' or 'item_id'")
        blob = self.path.read_bytes()
        try:
            twice: dict[int, str] = {}  # id(object) -> a key it repeats
            data = json.loads(blob, parse_constant=_no_constant, object_pairs_hook=_keys_once(twice))
        except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, NaN, too many digits
            raise BackendFatalError(f"{self.path}: not JSON ({e})") from None
        except RecursionError:
            raise BackendFatalError(f"{self.path}: not JSON (nested too deeply)") from None
        if not isinstance(data, dict):
            raise BackendFatalError(f"{self.path}: expected a JSON object of id -> list of tags")
        if id(data) in twice:  # only the top level holds ids (a nested object is not a tag list anyway)
            raise BackendFatalError(
                f"{self.path}: id {twice[id(data)]!r} is given twice; which tags are its?"
            )
        self.data: dict[str, object] = {str(k): v for k, v in data.items()}
        self.id_space = id_space
        self.rules = rules or FILE_RULES
        self.identity = f"file:{self.path.name}:{hashlib.sha256(blob).hexdigest()[:12]}:{id_space}"

    def require_overlap(self, items: Iterable[tuple[int, object]]) -> list[str]:
        """Fail before any work when no id of the file names an item of the catalogue (`items`: pairs
        of item id and key): a wrong `id_space` or another catalogue's file would otherwise write an
        empty tag source and report every item as missing. Returns the file's ids that name no item."""
        ids = [str(key) if self.id_space == "key" else str(iid) for iid, key in items]
        known = set(ids)
        if self.data and not known.isdisjoint(self.data):
            return [k for k in self.data if k not in known]
        other = "item_id" if self.id_space == "key" else "key"
        example = next(iter(self.data), None)
        raise BackendFatalError(
            f"{self.path}: none of its {len(self.data):,} ids is an item {self.id_space} of this dataset "
            f"(file: {example!r}, dataset: {ids[0] if ids else None!r}); "
            f"ids are matched as {self.id_space}s, try --id-space {other}"
        )

    def tag(self, requests: list[TagRequest], pass_: Pass = "generate") -> list[TagResult]:
        out = []
        for r in requests:
            v = self.data.get(r.key if self.id_space == "key" else str(r.item_id))
            if v is None:
                out.append(TagResult(r.item_id, error=MISSING))
                continue
            if isinstance(v, str):
                p = parse_tags(v, r.title, r.description, self.rules)
                raw = v
            elif isinstance(v, list):
                p = check_tags(v, None, r.title, r.description, self.rules)
                raw = json.dumps(v, ensure_ascii=False)
            else:
                out.append(TagResult(r.item_id, raw=str(v)[:500], error=NOT_JSON))
                continue
            out.append(
                TagResult(r.item_id, p.tags, p.weights, raw=raw[:2000], error=None if p.ok else p.error)
            )
        return out

    def close(self) -> None:
        self.data = {}


def _keys_once(twice: dict[int, str]):  # noqa: ANN202 - a json object_pairs_hook
    """An `object_pairs_hook` noting, per object built, a key it repeats: `json.loads` keeps the last of
    two equal keys silently, and an id with two tag lists is ambiguous."""

    def hook(pairs: list[tuple[str, object]]) -> dict:
        out = dict(pairs)
        if len(out) < len(pairs):
            seen: set[str] = set()
            twice[id(out)] = next(k for k, _ in pairs if k in seen or seen.add(k))
        return out

    return hook


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")
