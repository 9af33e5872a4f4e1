"""Feature stage: frozen text, tag and image features of a dataset's items, cached on disk by content.

`load_item_features(ds, cfg)` returns the `ItemFeatures` a content-aware model reads. Every modality is
looked up in a content-addressed store before anything is computed, so a rerun costs only hashing:

* **text** of an item = `title + ". " + description` (whitespace collapsed, cut at `TEXT_MAX_CHARS`, far
  beyond what MiniLM reads); items with neither get a zero row and `text_mask` False. Vectors come from the
  frozen sentence encoder `cfg.text_encoder` (default: the packaged MiniLM, offline).
* **tags**: the tag vocabulary of `cfg.tags` under `artifacts_root()/tags/<dataset>/<source>/`; its strings
  are embedded with the same encoder. `"auto"` picks the best source there (see `TAG_SOURCE_PREFERENCE`).
* **image**: a local CLIP folder (`cfg.image_model`) or a file of precomputed vectors (`cfg.image_features`);
  see `temarec.features.image`. Neither: the visual modality is off.

Cache layout (`artifacts_root()/features/`): `text/<encoder identity>/` and `image/<model identity>/` are
`VectorStore`s, i.e. append-only chunks of (16-byte sha256 of the content -> float32 vector). The key is the
content (the exact text, the image file's bytes), not the item or the dataset, so editing one title
re-embeds one item, identical texts are embedded once, and datasets sharing items share vectors. A changed
encoder (weights or config) has another identity, hence another store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from temarec.config import FeaturesConfig
from temarec.data.dataset import CDDataset
from temarec.features.item_features import ItemFeatures
from temarec.features.text_encoder import load_text_encoder
from temarec.settings import artifacts_root, slug, tags_root

log = logging.getLogger(__name__)

#: characters of title + description kept; MiniLM reads 256 word pieces (~1,200 characters), so the cut
#: only bounds hashing and tokenising work on pathological descriptions
TEXT_MAX_CHARS = 2000
#: texts per encoder call (one progress-bar step) and texts between two writes to the store (crash safety)
ENCODE_BLOCK = 1024
FLUSH_EVERY = 8192
#: `tags="auto"` takes a source that tagged the whole catalogue before any `-sample*`/`-limit*` trial;
#: then the first prefix group with a vocabulary, self-refined before unrefined, then by name. Imported
#: files and OpenAI-compatible servers come before local llama.cpp because they usually carry a much
#: larger LLM than the packaged SmolLM2-135M; keyphrases (no LLM) are the fallback.
TAG_SOURCE_PREFERENCE = ("openai", "file", "llamacpp", "keyphrase")
_OFF = {"", "none", "off", "false", "no"}


def tags_off(spec: str | None) -> bool:
    """`features.tags` turns tags off (None, none, off...), as opposed to naming a source or `auto`."""
    return spec is None or spec.strip().lower() in _OFF


KEY_BYTES = 16


# ---- content-addressed vector store -----------------------------------------------------------------
class VectorStore:
    """An on-disk map from 16-byte content keys (`S16`) to float32 vectors of one fixed dimension.

    Chunks are immutable pairs `<name>.vecs.npy` + `<name>.keys.npy`; the keys file is written last (temp
    file + rename), so a chunk without it is invisible and a crash never leaves a half chunk behind.
    Concurrent writers only add chunks; `compact` merges them. Vectors are memory-mapped, so a look-up
    reads only the rows it needs.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _chunk_names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name[: -len(".keys.npy")] for p in self.folder.glob("*.keys.npy"))

    def _open(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            keys = np.load(self.folder / f"{name}.keys.npy", allow_pickle=False)
            vecs = np.load(self.folder / f"{name}.vecs.npy", mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise  # a compaction removed it meanwhile: `_load` lists the chunks again
        except (OSError, ValueError, EOFError) as e:  # truncated or not .npy
            raise ValueError(
                f"{self.folder / name}.*.npy: unreadable feature-cache chunk ({type(e).__name__}: {e}); "
                "delete both of its files to rebuild them"
            ) from None
        if keys.dtype != np.dtype(f"S{KEY_BYTES}") or vecs.ndim != 2 or len(vecs) != len(keys):
            raise ValueError(f"{self.folder / name}: corrupt feature-cache chunk (delete it to rebuild)")
        return keys, vecs

    def _load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        """(sorted unique keys, chunk of each, row of each, chunk vectors); retries once if a compaction
        removed a chunk between listing and opening."""
        for attempt in range(2):
            try:
                chunks = [self._open(n) for n in self._chunk_names()]
                break
            except FileNotFoundError:
                if attempt:
                    raise
        if not chunks:
            e = np.zeros(0, dtype=np.int64)
            return np.zeros(0, dtype=f"S{KEY_BYTES}"), e, e, []
        dims = {v.shape[1] for _, v in chunks}
        if len(dims) > 1:
            raise ValueError(f"{self.folder}: chunks of different dimensions {sorted(dims)}")
        keys = np.concatenate([k for k, _ in chunks])
        which = np.repeat(np.arange(len(chunks)), [len(k) for k, _ in chunks])
        row = np.concatenate([np.arange(len(k)) for k, _ in chunks])
        uniq, first = np.unique(keys, return_index=True)
        return uniq, which[first], row[first], [v for _, v in chunks]

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """`(found bool [n], vectors [found.sum(), D])`; vectors is None when the store is empty."""
        uniq, which, row, vecs = self._load()
        found = np.zeros(len(keys), dtype=bool)
        if not len(uniq) or not len(keys):
            return found, None if not vecs else np.zeros((0, vecs[0].shape[1]), np.float32)
        pos = np.minimum(np.searchsorted(uniq, keys), len(uniq) - 1)
        found = uniq[pos] == keys
        pos = pos[found]
        out = np.empty((len(pos), vecs[0].shape[1]), dtype=np.float32)
        for c in np.unique(which[pos]):
            sel = which[pos] == c
            out[sel] = vecs[c][row[pos[sel]]]
        return found, out

    def put(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add one chunk (no-op for none)."""
        if not len(keys):
            return
        from temarec.files import atomic_write

        if len(keys) != len(vectors) or vectors.ndim != 2:
            raise ValueError("put(): one vector row per key expected")
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        keys = np.ascontiguousarray(keys, dtype=f"S{KEY_BYTES}")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        atomic_write(self.folder / f"{name}.vecs.npy", lambda tmp: _save_npy(tmp, vectors))
        atomic_write(self.folder / f"{name}.keys.npy", lambda tmp: _save_npy(tmp, keys))

    def compact(self, max_chunks: int = 8) -> None:
        """Merge all chunks into one once there are more than `max_chunks` (keeps look-ups cheap)."""
        names = self._chunk_names()
        if len(names) <= max_chunks:
            return
        uniq, which, row, vecs = self._load()
        out = np.empty((len(uniq), vecs[0].shape[1]), dtype=np.float32)
        for c in range(len(vecs)):
            sel = which == c
            out[sel] = vecs[c][row[sel]]
        self.put(uniq, out)
        for n in names:  # keys first: the chunk disappears before its vectors do
            (self.folder / f"{n}.keys.npy").unlink(missing_ok=True)
            (self.folder / f"{n}.vecs.npy").unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._load()[0])

    def nbytes(self) -> int:
        """Bytes on disk (all chunk files)."""
        if not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.glob("*.npy"))


def _save_npy(path: str, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would append ".npy" to a temp name
        np.save(fh, arr, allow_pickle=False)


def content_keys(contents: list[bytes]) -> np.ndarray:
    """`S16` keys: the first 16 bytes of each content's sha256."""
    digests = b"".join(hashlib.sha256(c).digest()[:KEY_BYTES] for c in contents)
    return np.frombuffer(digests, dtype=f"S{KEY_BYTES}").copy()


def _safe_name(identity: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", identity).strip("._") or "x"


def feature_store(kind: str, identity: str) -> VectorStore:
    """The store of one encoder (`kind` = text or image) under `artifacts_root()/features/`."""
    return VectorStore(artifacts_root() / "features" / kind / _safe_name(identity))


# ---- text --------------------------------------------------------------------------------------------
def _clean(col: pd.Series) -> pd.Series:
    s = col.astype(object).where(col.notna(), "").astype(str)
    return s.str.replace(r"\s+", " ", regex=True).str.strip()


def item_texts(items: pd.DataFrame, max_chars: int = TEXT_MAX_CHARS) -> tuple[list[str], np.ndarray]:
    """Per item (in row order) `title + ". " + description` and whether it has any text at all."""
    title = _clean(items["title"]) if "title" in items else pd.Series("", index=items.index)
    desc = _clean(items["description"]) if "description" in items else pd.Series("", index=items.index)
    both = (title.str.len() > 0) & (desc.str.len() > 0)
    ends = title.str.contains(r"[.!?:;]$", regex=True)
    sep = np.where(both, np.where(ends, " ", ". "), "")
    text = (title + sep + desc).str.slice(0, max_chars).str.strip()
    return text.tolist(), (text.str.len() > 0).to_numpy()


@dataclass
class EmbedStats:
    cached: int = 0  # texts found in the store
    computed: int = 0  # distinct texts the encoder embedded
    seconds: float = 0.0


class _Encoder:
    """The text encoder, loaded only when some text is not in the store (a cache hit loads no model)."""

    def __init__(self, name: str | None, device: str) -> None:
        self.name, self.device = name, device
        self._enc = None
        self._identity: str | None = None

    def get(self):
        if self._enc is None:
            self._enc = load_text_encoder(self.name, device=self.device)
            if self._identity is not None and self._enc.identity != self._identity:
                log.warning("text encoder identity %s != %s", self._enc.identity, self._identity)
        return self._enc

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = _encoder_identity(self.name) or self.get().identity
        return self._identity


def _encoder_identity(name: str | None) -> str | None:
    """The encoder's identity without loading its weights into a model (None: not computable here)."""
    from temarec.features import text_encoder as te

    fn = getattr(te, "encoder_identity", None)
    try:
        if fn is not None:
            return fn(name)
        model_name, folder = te._resolve(name)
        return f"{model_name}@{te._folder_hash(folder)}"
    except AttributeError:
        return None


def embed_texts_cached(
    encoder: _Encoder,
    texts: list[str],
    batch_size: int,
    progress: bool,
    desc: str = "text features",
) -> tuple[np.ndarray, EmbedStats]:
    """`[len(texts), D]` vectors, embedding only the distinct texts that are not in the store yet."""
    t0 = time.perf_counter()
    stats = EmbedStats()
    store = feature_store("text", encoder.identity)
    keys = content_keys([t.encode("utf-8") for t in texts])
    found, hit = store.get(keys)
    stats.cached = int(found.sum())
    miss = np.flatnonzero(~found)
    new_keys, first, inverse = np.unique(keys[miss], return_index=True, return_inverse=True)
    new_vecs = None
    if len(new_keys):
        enc = encoder.get()
        todo = [texts[i] for i in miss[first]]
        order = np.argsort([len(t) for t in todo], kind="stable")  # similar lengths batch with less padding
        new_vecs = np.zeros((len(todo), enc.dim), dtype=np.float32)
        flushed = 0
        with tqdm(total=len(todo), desc=desc, unit="text", disable=not progress, leave=False) as bar:
            for s in range(0, len(todo), ENCODE_BLOCK):
                idx = order[s : s + ENCODE_BLOCK]
                new_vecs[idx] = enc.encode([todo[i] for i in idx], batch_size=batch_size)
                bar.update(len(idx))
                done = s + len(idx)
                if done - flushed >= FLUSH_EVERY or done == len(todo):
                    part = order[flushed:done]
                    store.put(new_keys[part], new_vecs[part])
                    flushed = done
        store.compact()
        stats.computed = len(todo)
    dim = hit.shape[1] if hit is not None and hit.size else new_vecs.shape[1] if new_vecs is not None else 0
    if not texts:
        dim = dim or encoder.get().dim
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if hit is not None and len(hit):
        out[found] = hit
    if new_vecs is not None:
        out[miss] = new_vecs[inverse]
    stats.seconds = time.perf_counter() - t0
    return out, stats


class CachedTextEncoder:
    """`encode(texts)` through the feature store: what the tag vocabulary uses to merge near-duplicate
    tags, so that re-tagging a catalogue re-embeds only new tag strings (and the feature stage then finds
    the canonical tags embedded already)."""

    def __init__(self, name: str | None = None, device: str = "cpu", progress: bool = True) -> None:
        self._enc = _Encoder(name, device)
        self.progress = progress

    @property
    def identity(self) -> str:
        return self._enc.identity

    def encode(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        return embed_texts_cached(self._enc, list(texts), batch_size, self.progress, desc="tag strings")[0]


# ---- tags --------------------------------------------------------------------------------------------
def tag_sources(dataset_name: str) -> list[str]:
    """Sources with a saved tag vocabulary for this dataset, best first (the order `auto` uses)."""
    root = tags_root(dataset_name)
    if not root.is_dir():
        return []
    names = [p.name for p in root.iterdir() if (p / "vocab.json").is_file()]
    return sorted(names, key=lambda name: _source_rank(root / name))


def _made_by(path: Path, keys: tuple[str, ...]) -> dict | None:
    """The record at `keys` inside a JSON file, if it names a backend; None if unreadable or absent."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d if isinstance(d, dict) and isinstance(d.get("backend"), str) else None


def _source_rank(folder: Path) -> tuple:
    """Sort key of a tag source: whole catalogue before a `--sample`/`--limit` trial, then the backend
    (`TAG_SOURCE_PREFERENCE`), then refined before not, then the name.

    What the source is comes from its vocabulary's `meta.tagged_with` (the backend's identity, sample,
    limit, refine; saved with the vocabulary), else its `summary.json` (older sources), so a source named
    with `--source-name` ranks by what made it; the folder name (`file-...`, `...-sample20-seed0`) is the
    fallback for a source with neither.
    """
    name = folder.name
    backend, partial, refined = name, bool(re.search(r"-(sample|limit)\d", name)), "refined" in name
    doc = _made_by(folder / "vocab.json", ("meta", "tagged_with")) or _made_by(folder / "summary.json", ())
    if doc is not None:
        backend = doc["backend"]
        partial = doc.get("sample") is not None or doc.get("limit") is not None
        refined = bool(doc.get("refine"))
    group = next(
        (i for i, pre in enumerate(TAG_SOURCE_PREFERENCE) if backend.startswith(pre)),
        len(TAG_SOURCE_PREFERENCE),
    )
    return partial, group, not refined, name


def resolve_tag_source(dataset_name: str, spec: str | None) -> Path | None:
    """The vocabulary folder for `spec` (`auto`, a source name, or a folder); None when tags are off."""
    if tags_off(spec):
        return None
    root = tags_root(dataset_name)
    available = tag_sources(dataset_name)
    if spec.strip().lower() == "auto":
        return root / available[0] if available else None
    for cand in (root / spec, root / slug(spec), Path(spec).expanduser()):
        if (cand / "vocab.json").is_file():
            return cand
    listed = ", ".join(available) if available else "none"
    raise ValueError(
        f"tag source {spec!r} not found for dataset {dataset_name!r} under {root} (sources with a "
        f"vocabulary: {listed}); run `temarec tag` first, or set features.tags=auto or none"
    )


def tag_vocab_fingerprint(folder: Path) -> str:
    """A short content hash of a tag vocabulary: of its `vocab.json`, which holds the tags and the sha256
    of `arrays.npz`, so re-tagging into the same folder gives another fingerprint (checked by resumes and
    by the bench, which would otherwise reuse numbers made with the old tags)."""
    return hashlib.sha256((Path(folder) / "vocab.json").read_bytes()).hexdigest()[:16]


# ---- assembly ----------------------------------------------------------------------------------------
@dataclass
class FeatureReport:
    """What one build did, per modality: counts, cache hits, time, and where the features came from."""

    modalities: dict[str, dict] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = []
        for name, m in self.modalities.items():
            parts = [f"{k}={v}" for k, v in m.items() if k != "notes"]
            out.append(f"{name}: " + ", ".join(parts))
            out += [f"  note: {n}" for n in m.get("notes", [])]
        return out


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a core dependency
        return "cpu"


def build_item_features(
    ds: CDDataset,
    cfg: FeaturesConfig,
    progress: bool = True,
    use_text: bool = True,
    use_tags: bool = True,
    use_image: bool = True,
    device: str | None = None,
) -> tuple[ItemFeatures, FeatureReport]:
    """Features of every item of `ds` plus a report of what was cached and what was computed."""
    from temarec.features import image as image_mod

    device = device or _default_device()
    n = ds.n_items
    report = FeatureReport()
    sources: list[str] = []
    encoder = _Encoder(cfg.text_encoder, device)
    kw: dict = {}

    if use_text:
        texts, has = item_texts(ds.items)
        idx = np.flatnonzero(has)
        vecs, st = embed_texts_cached(encoder, [texts[i] for i in idx], cfg.batch_size, progress)
        text = np.zeros((n + 1, vecs.shape[1]), dtype=np.float32)
        text[idx + 1] = vecs
        mask = np.zeros(n + 1, dtype=bool)
        mask[idx + 1] = True
        kw.update(text=text, text_mask=mask)
        sources.append(f"text={encoder.identity}")
        report.modalities["text"] = {
            "items": int(has.sum()),
            "without_text": int(n - has.sum()),
            "cached": st.cached,
            "computed": st.computed,
            "seconds": round(st.seconds, 2),
            "encoder": encoder.identity,
        }

    if use_tags:
        folder = resolve_tag_source(ds.name, cfg.tags)
        if folder is None:
            why = (
                "features.tags is off"
                if tags_off(cfg.tags)
                else f"no tag vocabulary for {ds.name!r}; run `temarec tag`"
            )
            report.modalities["tags"] = {"items": 0, "notes": [why]}
        else:
            kw.update(_tag_features(ds, folder, cfg, encoder, progress, report))
            sources.append(f"tags={folder.name}@{encoder.identity}")

    if use_image:
        if cfg.image_features and cfg.image_model:
            raise ValueError("give features.image_features or features.image_model, not both")
        t0 = time.perf_counter()
        if cfg.image_features:
            img, mask, src, info = image_mod.load_precomputed(cfg.image_features, ds)
        elif cfg.image_model:
            img, mask, src, info = image_mod.clip_item_features(
                ds, cfg.image_model, batch_size=min(cfg.batch_size, 64), progress=progress, device=device
            )
        else:
            img = None
            report.modalities["image"] = {
                "items": 0,
                "notes": ["off: set features.image_model (a local CLIP folder) or features.image_features"],
            }
        if img is not None:
            kw.update(image=img, image_mask=mask)
            sources.append(f"image={src}")
            report.modalities["image"] = {
                "items": int(mask.sum()),
                **info,
                "seconds": round(time.perf_counter() - t0, 2),
            }

    feats = ItemFeatures(n_items=n, source="; ".join(sources) or "none", **kw)
    return feats, report


def dataset_argument(ds: CDDataset) -> str:
    """What `--dataset` takes to load `ds` again: its name when the data root holds it under that name
    (or it is the demo), else its folder."""
    from temarec.settings import data_root

    folder = Path(ds.source) if ds.source else None  # the demo's source is a module name
    if folder is not None and folder.is_dir() and folder.resolve() != (data_root() / ds.name).resolve():
        return str(ds.source)
    return ds.name


def check_tag_catalogue(vocab, folder: Path, ds: CDDataset) -> None:
    """Raise ValueError unless `vocab` (saved in `folder`) was built for `ds`'s items in `ds`'s order.

    Its rows are item ids, i.e. catalogue positions: a re-sorted or edited items.csv with the same number
    of items would otherwise give every item another item's tags. Vocabularies from before the key
    digest are checked against their folder's tags.jsonl instead. Items edited since tagging get a warning
    (`warn_changed_texts`).
    """
    from temarec.tagging.runner import check_tags_jsonl_keys

    keys = ds.items["key"].to_numpy()
    rerun = f"; rerun `temarec tag --dataset {dataset_argument(ds)}`"
    try:
        recorded = vocab.check_catalogue(keys, ds.item_domain, where=f"tag vocabulary {folder}")
        if not recorded and (folder / "tags.jsonl").is_file():
            check_tags_jsonl_keys(folder / "tags.jsonl", keys)
        elif not recorded:
            log.warning(
                "tag vocabulary %s records no item keys and has no tags.jsonl: its item order "
                "cannot be checked against dataset %r",
                folder,
                ds.name,
            )
    except ValueError as e:  # TagVocabError included
        raise ValueError(f"{e}{rerun}") from None
    warn_changed_texts(vocab, folder, ds)


def warn_changed_texts(vocab, folder: Path, ds: CDDataset) -> int:
    """Warn, naming a few keys, when items' titles or descriptions changed since they were tagged; returns
    how many. A warning, not an error: the other items' tags still hold, and the cache makes the re-tag
    cheap (it asks the model only about the changed texts)."""
    from temarec.tagging.vocab import item_text_hashes

    if vocab.text_hash is None:  # older vocabularies and imported tags: nothing to compare (or hash)
        return 0
    changed = vocab.changed_texts(
        item_text_hashes(ds.items["title"].to_numpy(), ds.items["description"].to_numpy())
    )
    if changed is None or not len(changed):
        return 0
    keys = ds.items["key"].to_numpy()[changed[:3] - 1]
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    log.warning(
        "tag vocabulary %s: %d item(s) have another title or description than when they were tagged (%s%s); "
        "their tags describe the old text. Rerun the `temarec tag --dataset %s` command that made this "
        "source (same --backend and --source-name; its cache asks the model only about the changed items)",
        folder,
        len(changed),
        ", ".join(map(str, keys)),
        more,
        dataset_argument(ds),
    )
    return len(changed)


def _tag_features(
    ds: CDDataset, folder: Path, cfg: FeaturesConfig, encoder: _Encoder, progress: bool, report: FeatureReport
) -> dict:
    from temarec.tagging.vocab import TagVocab

    vocab = TagVocab.load(folder)
    check_tag_catalogue(vocab, folder, ds)
    ids, weights = vocab.padded(cfg.max_tags)
    names = vocab.tag_texts()
    vecs, st = embed_texts_cached(encoder, names, cfg.batch_size, progress, desc="tag features")
    if not names:
        vecs = np.zeros((0, vecs.shape[1] if vecs.ndim == 2 else 0), dtype=np.float32)
    report.modalities["tags"] = {
        "source": folder.name,
        "vocabulary": len(vocab),
        "items": int((ids >= 0).any(1).sum()),
        "cached": st.cached,
        "computed": st.computed,
        "seconds": round(st.seconds, 2),
    }
    return dict(
        tag_ids=ids,
        tag_weights=weights,
        tag_text=vecs,
        tag_count=vocab.counts.sum(1).astype(np.int64),
        tag_names=names,
        tag_fingerprint=tag_vocab_fingerprint(folder),
    )


def load_item_features(
    ds: CDDataset,
    cfg: FeaturesConfig,
    progress: bool = True,
    use_text: bool = True,
    use_tags: bool = True,
    use_image: bool = True,
) -> ItemFeatures:
    """`ItemFeatures` of `ds` per `cfg`, built once and then read from the content-keyed cache."""
    feats, report = build_item_features(ds, cfg, progress, use_text, use_tags, use_image)
    for line in report.lines():
        log.info(line)
    return feats
