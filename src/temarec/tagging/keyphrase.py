"""`keyphrase`: a no-LLM tag backend, KeyBERT-style, on the packaged MiniLM encoder.

For each item: candidate phrases are the 1..`ngram_max`-word n-grams of content words in the title, then the
description (a run stops at punctuation, a stop word, a unit or measure word, or a token with a digit);
each candidate is put in canonical form (`normalize_words`: case, accents, British spelling, plurals) so
"Coffee Mugs" and "coffee mug" are one candidate. Candidates are ranked by cosine similarity to the
embedding of the item's own text (title + description, first `max_doc_chars` characters) and `top_k` are
picked with Maximal Marginal Relevance: `(1 - diversity) * sim(doc) - diversity * max sim(already picked)`,
so the list is not five variants of one phrase. A result's weights are the cosine to the item text,
clipped to [0, 1]; the tags are in MMR order.

Defaults, measured with `tag_agreement` (threshold 0.7) against the third-party LLM tags of two samples of
300 random Art-Office items (title + attributes; table in docs/tags.md): `diversity` 0.3 beats 0.5 (F1
.396/.403 against .372/.375 with 3-grams); 0.0 scores a little higher but returns a phrase next to its own
words. `ngram_max` 2 scores at least as well as 3 (.429/.406 against .396/.403) and encodes about a third
fewer phrases, which are the main cost.

Vectorised: per batch of `batch_items` items, the phrases not yet in the phrase cache and the item texts
go through the encoder in one `encode` call; phrase embeddings are kept across batches (up to
`cache_size` phrases, then the cache starts afresh), so a phrase shared by many items is encoded once.

Items with neither title nor description fail with reason "no text"; items whose text has no candidate
phrase (only numbers, units, stop words) fail with "no candidate phrases". The extraction is
deterministic, so the `refine` pass returns exactly what `generate` does (it is accepted, not an error,
so a two-pass configuration still runs; it costs a second extraction).
"""

from __future__ import annotations

import html
import json
import re

import numpy as np

from temarec.tagging.base import Pass, TagRequest, TagResult
from temarec.tagging.normalize import BRITISH_SPELLING, PLACEHOLDER_TAGS, STOPWORDS, fold_text, singularize

VERSION = "v1"

#: units, measures and shop words: never part of a candidate phrase
NOISE_WORDS = frozenset(
    """
    pack packs count counts ct oz ounce ounces fl lb lbs pound pounds inch inches cm mm ml liter liters litre
    litres gram grams kg mg gal gallon gallons qt quart quarts pint pints dozen piece pieces pc pcs set sets
    size sizes qty quantity bulk assorted new item items product products value approx approximately ea each
    total brand model style type inc co ltd llc com amazon pk ft feet yard yards yd sheet sheets case cases
    box boxes bag bags lot lots variety various large small medium mini extra jumbo regular
    """.split()
)
# "box", "bag", "case" are units here ("12 per box"); as products they rarely beat the thing they hold.

_CHUNK = re.compile(r"[,.;:!?()\[\]{}<>\"|/\\•·…]+|\s[-–—&+*]+\s|\t|\n")
_TOKEN = re.compile(r"[a-z]+(?:['-][a-z]+)*")
_STRIP = "'\"-*_~`"


def _text(value: object) -> str:
    """A request field as clean text: HTML entities decoded ("&quot;", "&amp;"), None/NaN -> ""."""
    return html.unescape(value).strip() if isinstance(value, str) else ""


def _canon_token(tok: str) -> list[str]:
    """The canonical words of one token ("k-cups" -> ["k", "cup"], "valentine's" -> ["valentine"])."""
    if tok.endswith("'s"):
        tok = tok[:-2]
    parts = tok.replace("'", "").split("-")
    return [singularize(BRITISH_SPELLING.get(p, p)) for p in parts if p]


def candidate_phrases(text: str, ngram_max: int = 2, limit: int | None = None) -> list[str]:
    """Canonical 1..ngram_max-word phrases of `text`, in order of first occurrence, without repeats."""
    out: dict[str, None] = {}
    for chunk in _CHUNK.split(fold_text(text)):
        run: list[str] = []
        runs: list[list[str]] = []
        for raw in chunk.split():
            tok = raw.strip(_STRIP)
            if (
                len(tok) < 2
                or not _TOKEN.fullmatch(tok)
                or tok in STOPWORDS
                or tok in NOISE_WORDS
                or tok.removesuffix("'s") in STOPWORDS
            ):
                if run:
                    runs.append(run)
                    run = []
                continue
            run.extend(w for w in _canon_token(tok) if w)
        if run:
            runs.append(run)
        for words in runs:
            for n in range(1, ngram_max + 1):
                for i in range(len(words) - n + 1):
                    gram = words[i : i + n]
                    if n == 1 and (len(gram[0]) < 2 or gram[0] in NOISE_WORDS):
                        continue
                    phrase = " ".join(gram)
                    if phrase not in PLACEHOLDER_TAGS:
                        out.setdefault(phrase, None)
                    if limit is not None and len(out) >= limit:
                        return list(out)
    return list(out)


def mmr(emb: np.ndarray, doc_sim: np.ndarray, top_k: int, diversity: float) -> list[int]:
    """Maximal Marginal Relevance over unit-length candidate embeddings; indices in pick order."""
    n = len(doc_sim)
    k = min(top_k, n)
    if k <= 0:
        return []
    if diversity <= 0.0 or k == 1:
        return np.argsort(-doc_sim, kind="stable")[:k].tolist()
    sim = emb @ emb.T
    first = int(np.argmax(doc_sim))
    picked = [first]
    closest = sim[first].copy()
    free = np.ones(n, dtype=bool)
    free[first] = False
    for _ in range(k - 1):
        score = (1.0 - diversity) * doc_sim - diversity * closest
        score[~free] = -np.inf
        j = int(np.argmax(score))
        picked.append(j)
        free[j] = False
        np.maximum(closest, sim[j], out=closest)
    return picked


class _PhraseCache:
    """phrase -> unit embedding, in one growing float32 matrix; cleared when it would pass `max_size`."""

    def __init__(self, dim: int, max_size: int) -> None:
        self.dim = dim
        self.max_size = max_size
        self.clear()

    def clear(self) -> None:
        self.index: dict[str, int] = {}
        self.store = np.empty((min(4096, self.max_size), self.dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.index)

    def add(self, phrases: list[str], emb: np.ndarray) -> None:
        if len(phrases) > self.max_size:
            return
        if len(self.index) + len(phrases) > self.max_size:
            self.clear()
        need = len(self.index) + len(phrases)
        if need > len(self.store):
            grown = np.empty((min(self.max_size, max(need, 2 * len(self.store))), self.dim), dtype=np.float32)
            grown[: len(self.index)] = self.store[: len(self.index)]
            self.store = grown
        start = len(self.index)
        self.store[start : start + len(phrases)] = emb
        for i, p in enumerate(phrases):
            self.index[p] = start + i


class KeyphraseBackend:
    """Tags from an item's own title and description, ranked against its text embedding (see module doc)."""

    def __init__(
        self,
        encoder=None,
        top_k: int = 5,
        diversity: float = 0.3,
        batch_items: int = 256,
        ngram_max: int = 2,
        max_candidates: int = 48,
        max_doc_chars: int = 512,
        cache_size: int = 100_000,
    ) -> None:
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        if not 0.0 <= diversity <= 1.0:
            raise ValueError("diversity must be in [0, 1]")
        if batch_items < 1 or ngram_max < 1 or max_candidates < 1 or max_doc_chars < 1 or cache_size < 0:
            raise ValueError("batch_items, ngram_max, max_candidates, max_doc_chars must be >= 1")
        if encoder is None:
            from temarec.features.text_encoder import load_text_encoder

            encoder = load_text_encoder()
        self.encoder = encoder
        self.top_k = top_k
        self.diversity = float(diversity)
        self.batch_items = batch_items
        self.ngram_max = ngram_max
        self.max_candidates = max_candidates
        self.max_doc_chars = max_doc_chars
        enc_id = getattr(encoder, "identity", type(encoder).__name__)
        self.identity = (
            f"keyphrase/{VERSION}(top_k={top_k},diversity={self.diversity:g},ngram=1-{ngram_max},"
            f"max_candidates={max_candidates},doc_chars={max_doc_chars})|{enc_id}"
        )
        dim = int(getattr(encoder, "dim", 0) or encoder.encode(["x"]).shape[1])
        self._cache = _PhraseCache(dim, cache_size)
        self.stats = {"items": 0, "phrases_encoded": 0, "phrases_cached": 0, "encode_calls": 0}

    def tag(self, requests: list[TagRequest], pass_: Pass = "generate") -> list[TagResult]:
        """Tags for each request, in order; `refine` gives the same answer as `generate`."""
        if pass_ not in ("generate", "refine"):
            raise ValueError(f"unknown pass {pass_!r}: expected 'generate' or 'refine'")
        out: list[TagResult] = []
        for s in range(0, len(requests), self.batch_items):
            out.extend(self._tag_batch(list(requests[s : s + self.batch_items])))
        return out

    def close(self) -> None:
        self._cache.clear()

    # ---- one batch ---------------------------------------------------------------------------------
    def _tag_batch(self, batch: list[TagRequest]) -> list[TagResult]:
        results: list[TagResult | None] = [None] * len(batch)
        docs: list[str] = []
        doc_of: list[int] = []  # position in batch of each doc
        cands: list[list[str]] = []
        for k, req in enumerate(batch):
            title, desc = _text(req.title), _text(req.description)
            if not title and not desc:
                results[k] = TagResult(item_id=req.item_id, error="no text")
                continue
            phrases = candidate_phrases(title, self.ngram_max, self.max_candidates) if title else []
            if desc and len(phrases) < self.max_candidates:
                seen = set(phrases)
                more = candidate_phrases(desc[: 4 * self.max_doc_chars], self.ngram_max, self.max_candidates)
                phrases += [p for p in more if p not in seen][: self.max_candidates - len(phrases)]
            if not phrases:
                results[k] = TagResult(item_id=req.item_id, error="no candidate phrases")
                continue
            doc = f"{title}. {desc}" if title and desc else (title or desc)
            docs.append(doc[: self.max_doc_chars])
            doc_of.append(k)
            cands.append(phrases)
        if docs:
            uniq: dict[str, int] = {}
            for phrases in cands:
                for p in phrases:
                    uniq.setdefault(p, len(uniq))
            names = list(uniq)
            emb_u = np.empty((len(names), self._cache.dim), dtype=np.float32)
            missing: list[str] = []
            missing_rows: list[int] = []
            for i, p in enumerate(names):
                r = self._cache.index.get(p)
                if r is None:
                    missing.append(p)
                    missing_rows.append(i)
                else:
                    emb_u[i] = self._cache.store[r]
            enc = np.asarray(self.encoder.encode(missing + docs), dtype=np.float32)
            self.stats["encode_calls"] += 1
            if enc.shape[0] != len(missing) + len(docs):
                raise RuntimeError(
                    f"encoder returned {enc.shape[0]} vectors for {len(missing) + len(docs)} texts"
                )
            emb_u[missing_rows] = enc[: len(missing)]
            emb_d = enc[len(missing) :]
            self._cache.add(missing, enc[: len(missing)])
            self.stats["phrases_encoded"] += len(missing)
            self.stats["phrases_cached"] += len(names) - len(missing)
            doc_sim_all = emb_u @ emb_d.T  # [unique phrases, docs]
            for j, (k, phrases) in enumerate(zip(doc_of, cands, strict=True)):
                idx = np.fromiter((uniq[p] for p in phrases), dtype=np.int64, count=len(phrases))
                doc_sim = doc_sim_all[idx, j]
                pick = mmr(emb_u[idx], doc_sim, self.top_k, self.diversity)
                tags = [phrases[i] for i in pick]
                weights = [round(float(np.clip(doc_sim[i], 0.0, 1.0)), 4) for i in pick]
                raw = json.dumps({"candidates": len(phrases), "tags": tags, "scores": weights})
                results[k] = TagResult(item_id=batch[k].item_id, tags=tags, weights=weights, raw=raw)
        self.stats["items"] += len(batch)
        return [
            r if r is not None else TagResult(item_id=b.item_id, error="not tagged")
            for r, b in zip(results, batch, strict=True)
        ]
