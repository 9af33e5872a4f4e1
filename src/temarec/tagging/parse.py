"""Parse and repair a model's answer into a clean tag list, or say precisely why it is unusable.

Models (small local ones especially) wrap JSON in prose or code fences, stop mid-list at `max_tokens`, answer
with a bare comma list, repeat themselves, echo the title, or follow instructions hidden in the title. Each
of these is repaired where the intent is clear (extract the JSON, close a truncated list, split a bare list,
drop offending tags) and otherwise reported with one of the `REASONS`, so the caller can retry and, at last,
record the failure and move on.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from temarec.tagging.normalize import (
    MAX_UNSPACED_CHARS,
    normalize_tag,
    normalize_words,
    singularize,
    unspaced_chars,
)

# failure reasons (also used by backends for transport failures)
NOT_JSON = "not_json"
EMPTY = "empty"
ECHO = "echo"
TOO_MANY = "too_many"
TOO_LONG = "tag_too_long"
INJECTION = "injection"
REFUSAL = "refusal"
GENERIC = "generic"
TIMEOUT = "timeout"
HTTP = "http_error"
NETWORK = "network"
BAD_RESPONSE = "bad_response"  # the server's reply was not a chat completion
BACKEND = "backend_error"
PROMPT_TOO_LONG = "prompt_too_long"
NO_TEXT = "no_text"
MISSING = "missing"
EXAMPLE_ECHO = "example_echo"  # every tag was one of the prompt's worked examples, absent from the item

#: reasons worth asking again on a later run (the server, not the item, was the problem)
TRANSIENT = frozenset({TIMEOUT, HTTP, NETWORK, BAD_RESPONSE, BACKEND})

GENERIC_TAGS = frozenset(
    """product products item items tag tags none null n/a na unknown misc miscellaneous other others
    general good great best quality high quality new sale gift goods stuff thing things brand
    json answer example""".split()
) | {"high quality", "best seller", "top rated", "great value", "tags for this product"}

# instruction-like text, in inputs (to locate a planted instruction) and in outputs (a followed one)
INJECTION_RE = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instruction|instructions|prompt|prompts|rules|"
    r"above|previous|prior|earlier|system)\b"
    r"|\bsystem\s+prompt\b|\byou\s+are\s+now\b|\bnew\s+instructions?\b|\bjailbreak\b|\bprompt\s+injection\b"
    r"|\b(respond|reply|answer|output)\s+(only\s+)?with\b|\bdo\s+anything\s+now\b|\bas\s+an\s+ai\b",
    re.IGNORECASE,
)
REFUSAL_RE = re.compile(
    r"^\W*(sorry|i\s+(cannot|can't|can not|am unable|am not able)|unfortunately|as an ai)"
    r"|\b(is not|isn't) an? (valid|real)\b|\bnot an? [\w ]{0,20}product\b|\bno [\w ]{0,20}attributes\b"
    r"|\bcannot be (extracted|determined|provided)\b",
    re.IGNORECASE,
)
_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_BULLET_RE = re.compile(r"^\s*(?:[-*•#]+|\d+[.)])\s*")
_EDGE_RE = re.compile(r"^[\s\"'`“”‘’#*\-–—•.,;:()\[\]{}<>]+|[\s\"'`“”‘’#*\-–—•.,;:()\[\]{}<>]+$")
_WS_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class TagRules:
    """Limits an answer must respect; the defaults suit 3-8 tags of 1-3 words."""

    max_tags: int = 8  # more (but not absurdly many) are cut to this
    hard_max_tags: int = 30  # more raw entries than this: degenerate output, rejected
    max_tag_chars: int = 40
    max_tag_words: int = 5
    min_tags: int = 1
    echo_overlap: float = 0.7  # a tag holding this share of a >=4-word title's words echoes it
    drop_generic: bool = True


DEFAULT_RULES = TagRules()


@dataclass
class Parsed:
    """Clean tags (best first) and optional weights, or `error`; `repairs` and `dropped` say what was done."""

    tags: list[str] = field(default_factory=list)
    weights: list[float] | None = None
    error: str | None = None
    repairs: list[str] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.tags)


# ---- locating the JSON ---------------------------------------------------------------------------
def _close_json(s: str) -> str | None:
    """A truncated JSON array/object closed: drop a dangling partial element, close strings and brackets."""
    stack: list[str] = []
    in_str = esc = False
    last_safe = 0  # index after the last complete element or opening bracket
    for i, ch in enumerate(s):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
                last_safe = i + 1
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
            last_safe = i + 1
        elif ch in "]}":
            if not stack or stack[-1] != ch:
                return None
            stack.pop()
            last_safe = i + 1
            if not stack:
                return s[: i + 1]
        elif ch == ",":
            last_safe = i
    if not stack:
        return None
    head = s[:last_safe].rstrip().rstrip(",").rstrip()
    if head.endswith(":"):  # an object key without a value
        head = head[: head.rfind(",")] if "," in head else head[: head.rfind("{") + 1]
    # recompute the stack of what is still open in `head`
    stack, in_str, esc = [], False, False
    for ch in head:
        if in_str:
            esc = (not esc) and ch == "\\"
            if ch == '"' and not esc:
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}" and stack:
            stack.pop()
    if in_str:
        head += '"'
    return head + "".join(reversed(stack))


def _find_json(text: str) -> tuple[object | None, list[str]]:
    """The first JSON array/object in `text`, repaired if truncated; (None, []) if there is none."""
    repairs: list[str] = []
    m = _FENCE_RE.search(text)
    if m:
        text = m.group(1)
        repairs.append("code_fence")
    dec = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch not in "[{":
            continue
        try:
            obj, _ = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            closed = _close_json(text[i:])
            if closed is None:
                continue
            try:
                obj = json.loads(closed)
            except json.JSONDecodeError:
                continue
            repairs.append("closed_truncated_json")
        if i > 0 and text[:i].strip():
            repairs.append("extracted_json")
        if isinstance(obj, dict | list):
            return obj, repairs
    return None, []


def _entries(obj: object) -> tuple[list[object], list[float] | None] | None:
    """Tag entries (and weights, if the model gave them) from the parsed JSON, whatever its shape."""
    if isinstance(obj, dict):
        for key in ("tags", "Tags", "TAGS", "labels", "keywords", "revised_tags", "revised tags"):
            if key in obj:
                return _entries(obj[key])
        lists = [v for v in obj.values() if isinstance(v, list | dict)]
        if len(lists) == 1:
            return _entries(lists[0])
        vals = list(obj.values())
        if vals and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            # {"tag": weight, ...}
            return list(obj.keys()), [float(v) for v in vals]
        return None
    if isinstance(obj, list):
        if obj and all(isinstance(e, dict) for e in obj):
            tags, weights = [], []
            for e in obj:
                name = next((e[k] for k in ("tag", "name", "label", "keyword") if k in e), None)
                w = next((e[k] for k in ("weight", "score", "relevance", "confidence") if k in e), None)
                tags.append(name)
                weights.append(float(w) if isinstance(w, int | float) and not isinstance(w, bool) else None)
            if all(w is not None for w in weights):
                return tags, weights
            return tags, None
        return list(obj), None
    return None


def _split_plain(text: str, rules: TagRules) -> list[str] | None:
    """A bare list ("a, b, c" / one per line / "[a, b]") when every piece is short enough to be a tag."""
    s = text.strip()
    s = re.sub(r"^(tags?|keywords|labels)\s*:\s*", "", s, flags=re.IGNORECASE)
    s = s.strip().strip("[]").strip()
    if not s:
        return None
    lines = [ln for ln in s.splitlines() if ln.strip()]
    pieces = lines if len(lines) > 1 else re.split(r"[,;|]", s)
    pieces = [_BULLET_RE.sub("", p).strip() for p in pieces]
    pieces = [p for p in pieces if p]
    if len(pieces) < 2 or any(len(p.split()) > rules.max_tag_words for p in pieces):
        return None
    return pieces


# ---- checking the tags ---------------------------------------------------------------------------
def clean_tag(tag: object) -> str:
    """Light clean-up (case, whitespace, quotes, bullets); canonical forms are `normalize.normalize_tag`'s."""
    if not isinstance(tag, str):
        if isinstance(tag, int | float) and not isinstance(tag, bool):
            tag = str(tag)
        else:
            return ""
    s = _BULLET_RE.sub("", tag)
    s = _WS_RE.sub(" ", s.replace("_", " ")).strip()
    s = _EDGE_RE.sub("", s)
    return s.lower()


def _words(text: str | None) -> list[str]:
    return _WORD_RE.findall((text or "").lower())


def injected_words(*texts: str | None) -> set[str]:
    """Words that occur only in instruction-like sentences of the input: a tag made of them obeys them."""
    planted: set[str] = set()
    rest: set[str] = set()
    for text in texts:
        if not text:
            continue
        for sent in re.split(r"(?<=[.!?;])\s+|\n", text):
            (planted if INJECTION_RE.search(sent) else rest).update(_words(sent))
    return planted - rest


def is_echo(tag: str, title: str | None, overlap: float = DEFAULT_RULES.echo_overlap) -> bool:
    """The tag repeats the title (or most of a long title) instead of describing it."""
    tw = _words(title)
    gw = _words(tag)
    if not tw or not gw:
        return False
    if gw == tw and len(tw) >= 2:
        return True
    if len(tw) < 4 or len(gw) < 3:
        return False
    tset = set(tw)
    covered = sum(1 for w in set(gw) if w in tset)
    return covered >= overlap * len(tset) and covered / len(set(gw)) >= 0.8


def text_words(*texts: str | None) -> frozenset[str]:
    """The words of an item's text as `is_example_echo` compares them: canonical (`normalize_words`:
    singular, American spelling), and each run of two or three words also joined, so that "non stick"
    and "nonstick" meet."""
    out: set[str] = set()
    for text in texts:
        ws = normalize_words(text or "")
        out.update(ws)
        for n in (2, 3):
            out.update(singularize("".join(ws[i : i + n])) for i in range(len(ws) - n + 1))
    return frozenset(out)


@lru_cache(maxsize=256)
def _canonical(examples: frozenset[str]) -> frozenset[str]:
    """Canonical forms of a prompt's example tags (a handful per domain; computed once each)."""
    return frozenset(c for c in map(normalize_tag, examples) if c)


def is_example_echo(tag: str, examples: frozenset[str], words: frozenset[str]) -> bool:
    """The tag is one of the prompt's worked-example phrases (`PromptSet.example_phrases`: the examples'
    tags and runs of their items' words; compared in canonical form, so "Baking Mats" is "baking mat")
    and the item's text does not support it: small models repeat their few-shot answers ("baking mat"
    on a coffee grinder, "baking mat set of 3" on a laundry sorter) instead of reading the item.
    `words` is `text_words(title, description)`."""
    canon = normalize_tag(tag)
    if canon is None or canon not in _canonical(examples):
        return False
    gw = canon.split()
    return not (all(w in words for w in gw) or singularize("".join(gw)) in words)


def drop_example_echo(
    tags: list[str], weights: list[float] | None, examples: frozenset[str], words: frozenset[str]
) -> tuple[list[str], list[float] | None, int]:
    """`tags` (and their weights) without example echoes, and how many were dropped."""
    keep = [i for i, t in enumerate(tags) if not is_example_echo(t, examples, words)]
    if len(keep) == len(tags):
        return tags, weights, 0
    kept_w = [weights[i] for i in keep] if weights is not None else None
    return [tags[i] for i in keep], kept_w, len(tags) - len(keep)


def check_tags(
    entries: list[object],
    weights: list[float] | None,
    title: str | None = None,
    description: str | None = None,
    rules: TagRules = DEFAULT_RULES,
) -> Parsed:
    """Clean, deduplicate and validate tag entries; drop the bad ones and fail if none are left."""
    out = Parsed()
    if len(entries) > rules.hard_max_tags:
        out.error = TOO_MANY
        out.dropped[TOO_MANY] = len(entries)
        return out
    # "a, b, c" inside one entry is several tags run together (small models do it)
    split: list[tuple[object, float | None]] = []
    for i, entry in enumerate(entries):
        w = weights[i] if weights is not None else None
        if isinstance(entry, str) and ("," in entry or ";" in entry):
            split.extend((part, w) for part in re.split(r"[,;]", entry) if part.strip())
            out.repairs.append("split_entry")
        else:
            split.append((entry, w))
    entries = [e for e, _ in split]
    weights = [w for _, w in split] if weights is not None else None
    out.repairs = sorted(set(out.repairs))
    planted = injected_words(title, description)
    seen: set[str] = set()
    kept_w: list[float] = []
    for i, entry in enumerate(entries):
        tag = clean_tag(entry)
        reason = None
        if not tag or len(tag) < 2:
            reason = EMPTY
        elif INJECTION_RE.search(tag) or (planted and set(_words(tag)) <= planted):
            reason = INJECTION
        elif is_echo(tag, title, rules.echo_overlap):
            reason = ECHO
        elif (
            len(tag) > rules.max_tag_chars
            or len(tag.split()) > rules.max_tag_words
            or unspaced_chars(tag) > MAX_UNSPACED_CHARS
        ):
            reason = TOO_LONG
        elif rules.drop_generic and tag in GENERIC_TAGS:
            reason = GENERIC
        elif tag in seen:
            reason = "duplicate"
        if reason:
            out.dropped[reason] += 1
            continue
        seen.add(tag)
        out.tags.append(tag)
        if weights is not None:
            w = weights[i]
            kept_w.append(min(1.0, max(0.0, float(w))) if w is not None else 0.0)
    if weights is not None:
        out.weights = kept_w
    if len(out.tags) > rules.max_tags:
        out.tags = out.tags[: rules.max_tags]
        out.weights = out.weights[: rules.max_tags] if out.weights is not None else None
        out.repairs.append("truncated")
    if len(out.tags) < rules.min_tags:
        bad = {k: v for k, v in out.dropped.items() if k != "duplicate"}
        out.error = max(bad, key=lambda k: bad[k]) if bad else EMPTY
        out.tags, out.weights = [], None
    elif out.dropped:
        out.repairs.append("dropped_" + "_".join(sorted(out.dropped)))
    return out


def parse_tags(
    raw: str | None,
    title: str | None = None,
    description: str | None = None,
    rules: TagRules = DEFAULT_RULES,
) -> Parsed:
    """Tags from a model's answer: JSON (any common shape; fenced, embedded, truncated) or a bare list."""
    text = (raw or "").strip()
    if not text:
        return Parsed(error=EMPTY)
    obj, repairs = _find_json(text)
    got = _entries(obj) if obj is not None else None
    if got is None:
        if REFUSAL_RE.search(text):
            return Parsed(error=REFUSAL)
        pieces = _split_plain(text, rules)
        if pieces is None:
            tw = _words(title)
            if tw and _words(text)[: len(tw)] == tw:
                return Parsed(error=ECHO)
            if INJECTION_RE.search(text) or (injected_words(title, description) & set(_words(text))):
                return Parsed(error=INJECTION)
            return Parsed(error=NOT_JSON)
        got, repairs = (pieces, None), ["plain_list"]
    entries, weights = got
    if not entries:
        return Parsed(error=EMPTY, repairs=repairs)
    out = check_tags(entries, weights, title, description, rules)
    out.repairs = repairs + out.repairs
    return out
