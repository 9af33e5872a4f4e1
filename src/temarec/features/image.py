"""Visual item features: a frozen CLIP image encoder from a local folder, or precomputed vectors from a file.

No package ships CLIP weights and temarec never downloads any, so the visual modality needs one of:

* `features.image_model`: a local folder saved by `transformers` `save_pretrained` of a `CLIPModel` (only
  its vision tower and projection are loaded) or a `CLIPVisionModelWithProjection`, with its
  `preprocessor_config.json`. Loaded with `local_files_only=True` and `HF_HUB_OFFLINE=1`. Each item's image
  is the path in `items["image"]` (relative paths are relative to the dataset folder); a missing or
  unreadable file, a URL (never fetched) or no path leaves the item's `image_mask` False. Vectors are the
  L2-normalised projected image embeddings, cached by the sha256 of the image file's bytes (see `build`).
* `features.image_features`: a file with one vector per item:
    - `.npy`: float array `[N, D]` (row i-1 = global item id i) or `[N+1, D]` (row 0 = padding, ignored);
    - `.safetensors`: the same array as the tensor `image` (or `vectors`, or the file's only tensor), plus an
      optional `mask` tensor (bool/int, one per row);
    - `.npz`: `vectors` `[K, D]` and `keys` (strings, the items' source keys `items["key"]`): a mapping, so
      items absent from `keys` have no image and keys not in the dataset are ignored (counted). Without
      `keys` it reads like `.npy`.
  All-zero rows mean "no image". NaN or infinite values are an error naming the file; rows are
  L2-normalised like CLIP's.
Files are read without unpickling (`allow_pickle=False`, safetensors).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from temarec.data.dataset import CDDataset

_HASHED = (".json", ".safetensors", ".bin", ".txt", ".model")  # files that define model + preprocessing
_NOT_HASHED = {"README.md", ".gitattributes", "LICENSE"}


class ImageFeatureError(ValueError):
    """Image features cannot be built or read; the message names the file or folder at fault."""


# ---- precomputed vectors -----------------------------------------------------------------------------
def _l2(arr: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.divide(arr, norm, out=np.zeros_like(arr), where=norm > 0)


def _read_array_file(path: Path) -> dict[str, np.ndarray]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return {"vectors": np.load(path, allow_pickle=False)}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if suffix == ".safetensors":
            from safetensors import safe_open

            out = {}
            with safe_open(str(path), framework="pt") as f:
                for k in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                    t = f.get_tensor(k)
                    out[k] = (t.float() if t.is_floating_point() else t).numpy()
            return out
    except Exception as e:  # OSError, ValueError, EOFError; safetensors has its own type for a bad header
        hint = ""
        if "allow_pickle" in str(e):  # never unpickled: object arrays would run code from the file
            hint = (
                "; it holds Python objects (e.g. keys saved with dtype=object): save them with .astype(str)"
            )
        raise ImageFeatureError(
            f"{path}: cannot read image features ({type(e).__name__}: {e}){hint}"
        ) from None
    raise ImageFeatureError(f"{path}: image features must be a .npy, .npz or .safetensors file")


def load_precomputed(path: str | Path, ds: CDDataset) -> tuple[np.ndarray, np.ndarray, str, dict]:
    """`(vectors [N+1, D] float32, mask [N+1], source, info)` from a file of precomputed image vectors."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ImageFeatureError(f"image features file {path} not found")
    arrays = _read_array_file(path)
    n = ds.n_items
    keys = arrays.get("keys")
    vec_name = next((k for k in ("image", "vectors") if k in arrays), None)
    if vec_name is None:
        floats = [k for k, a in arrays.items() if a.dtype.kind == "f"]
        if len(floats) != 1:
            raise ImageFeatureError(
                f"{path}: expected an array named 'image' or 'vectors' (found {sorted(arrays)})"
            )
        vec_name = floats[0]
    vecs = arrays[vec_name]
    if vecs.ndim != 2 or vecs.dtype.kind not in "fiu" or vecs.shape[1] < 1:
        raise ImageFeatureError(
            f"{path}: '{vec_name}' must be a 2-d numeric array, got {vecs.dtype}{vecs.shape}"
        )
    vecs = vecs.astype(np.float32)
    bad = ~np.isfinite(vecs).all(1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ImageFeatureError(
            f"{path}: {len(rows)} rows of '{vec_name}' hold NaN or infinite values (rows {rows[:5].tolist()}"
            f"{'...' if len(rows) > 5 else ''}); write zeros for items without an image"
        )
    info: dict = {"file": str(path)}
    out = np.zeros((n + 1, vecs.shape[1]), dtype=np.float32)
    if keys is not None:
        if keys.dtype.kind not in "US" or keys.ndim != 1 or len(keys) != len(vecs):
            raise ImageFeatureError(f"{path}: 'keys' must be 1-d strings, one per row of '{vec_name}'")
        keys = keys.astype(str)
        if len(np.unique(keys)) != len(keys):
            raise ImageFeatureError(f"{path}: duplicate item keys in 'keys'")
        item_keys = ds.items["key"].astype(str).to_numpy()
        order = np.argsort(keys)
        pos = np.minimum(np.searchsorted(keys[order], item_keys), len(keys) - 1)
        hit = keys[order][pos] == item_keys
        if not hit.any():
            raise ImageFeatureError(
                f"{path}: none of its {len(keys)} keys is an item key of {ds.name!r} (e.g. {keys[0]!r} vs "
                f"{item_keys[0]!r})"
            )
        out[1:][hit] = vecs[order][pos[hit]]
        info["unknown_keys"] = int(len(keys) - hit.sum())
    else:
        if len(vecs) == n + 1:
            vecs = vecs[1:]
        elif len(vecs) != n:
            raise ImageFeatureError(
                f"{path}: '{vec_name}' has {len(vecs)} rows; dataset {ds.name!r} has {n} items, so expected "
                f"{n} (items 1..N in global-id order) or {n + 1} (row 0 = padding), or a 'keys' array (.npz)"
            )
        out[1:] = vecs
    mask = np.abs(out).sum(1) > 0
    if "mask" in arrays and keys is None:
        m = np.asarray(arrays["mask"]).astype(bool).reshape(-1)
        if len(m) not in (n, n + 1):
            raise ImageFeatureError(f"{path}: 'mask' has {len(m)} entries, expected {n} or {n + 1}")
        mask[1:] &= m[-n:] if n else m[:0]
    out = _l2(out) * mask[:, None]
    mask[0] = False
    info["items_without_image"] = int(n - mask[1:].sum())
    return out, mask, f"file:{path.name}@{_file_hash(path)}", info


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


# ---- CLIP ---------------------------------------------------------------------------------------------
def _folder_identity(folder: Path) -> str:
    """`<folder name>@<12 hex of sha256 over config, preprocessing and weight files>`."""
    h = hashlib.sha256()
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix in _HASHED and p.name not in _NOT_HASHED
    )
    for p in files:
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return f"{folder.name}@{h.hexdigest()[:12]}"


class ClipImageEncoder:
    """The vision tower + projection of a local CLIP checkpoint; `encode(images)` -> unit vectors."""

    def __init__(self, folder: str | Path, device: str = "cpu") -> None:
        folder = Path(folder).expanduser()
        if not (folder / "config.json").is_file():
            raise ImageFeatureError(
                f"image model {str(folder)!r} is not a local model folder (no config.json); temarec never "
                "downloads models: give the folder of a CLIP model saved with save_pretrained"
            )
        if not (folder / "preprocessor_config.json").is_file():
            raise ImageFeatureError(
                f"{folder}: no preprocessor_config.json (save the CLIP image processor too)"
            )
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            import torch
            import transformers
            from transformers import AutoConfig, AutoImageProcessor, CLIPVisionModelWithProjection
        except ImportError:
            raise ImageFeatureError(
                "CLIP image features need transformers and pillow (pip install temarec[vision])"
            ) from None
        verbosity = transformers.logging.get_verbosity()
        bars = transformers.utils.logging.is_progress_bar_enabled()
        transformers.logging.set_verbosity_error()  # the text tower's weights are skipped on purpose
        transformers.utils.logging.disable_progress_bar()
        try:
            cfg = AutoConfig.from_pretrained(folder, local_files_only=True)
            if cfg.model_type == "clip":
                vcfg = cfg.vision_config
                vcfg.projection_dim = cfg.projection_dim
            elif cfg.model_type == "clip_vision_model":
                vcfg = cfg
            else:
                raise ImageFeatureError(f"{folder}: model type {cfg.model_type!r} is not CLIP")
            model = CLIPVisionModelWithProjection.from_pretrained(folder, config=vcfg, local_files_only=True)
            self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        except ImageFeatureError:
            raise
        except Exception as e:
            raise ImageFeatureError(f"cannot load CLIP from {folder}: {type(e).__name__}: {e}") from e
        finally:
            transformers.logging.set_verbosity(verbosity)
            if bars:
                transformers.utils.logging.enable_progress_bar()
        self._torch = torch
        self.model = model.to(device).eval()
        self.device = device
        self.dim = int(vcfg.projection_dim)
        self.identity = _folder_identity(folder)

    def encode(self, images: list) -> np.ndarray:
        """`[len(images), dim]` float32 unit vectors of PIL images."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        pix = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        with self._torch.inference_mode():
            emb = self.model(pixel_values=pix).image_embeds
        return _l2(emb.float().cpu().numpy())


def _image_root(ds: CDDataset) -> Path:
    src = Path(ds.source) if ds.source else None
    return src if src is not None and src.is_dir() else Path.cwd()


def image_paths(ds: CDDataset) -> tuple[list[Path | None], dict]:
    """Each item's image file (None: no image) and counts of why items have none."""
    root = _image_root(ds)
    counts = {"no_image_field": 0, "url_not_fetched": 0}
    out: list[Path | None] = []
    for v in ds.items["image"].tolist():
        s = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()
        if not s:
            counts["no_image_field"] += 1
            out.append(None)
        elif "://" in s:
            counts["url_not_fetched"] += 1
            out.append(None)
        else:
            p = Path(s).expanduser()
            out.append(p if p.is_absolute() else root / p)
    return out, counts


def _open_image(data: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def clip_item_features(
    ds: CDDataset,
    model_folder: str | Path,
    batch_size: int = 64,
    progress: bool = True,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, str, dict]:
    """`(vectors [N+1, D], mask [N+1], source, info)` of the items' images through a local CLIP.

    Only images whose bytes are not in the store are decoded and encoded; the store is keyed by the model's
    identity and the sha256 of each file, so a rerun reads and hashes files but runs no model.
    """
    from temarec.features.build import FLUSH_EVERY, KEY_BYTES, feature_store

    folder = Path(model_folder).expanduser()
    if not folder.is_dir():
        raise ImageFeatureError(
            f"image model {str(model_folder)!r} is not a local folder; temarec never downloads models"
        )
    identity = _folder_identity(folder)
    store = feature_store("image", identity)
    paths, info = image_paths(ds)
    n = ds.n_items
    info.update(missing_file=0, unreadable=0, cached=0, computed=0)
    have = [i for i, p in enumerate(paths) if p is not None]
    digests: list[bytes] = []
    ok: list[int] = []
    bar = tqdm(have, desc="hashing images", unit="img", disable=not progress or len(have) < 2000, leave=False)
    for i in bar:
        try:
            data = paths[i].read_bytes()
        except OSError:
            info["missing_file"] += 1
            continue
        digests.append(hashlib.sha256(data).digest()[:KEY_BYTES])
        ok.append(i)
    keys = np.frombuffer(b"".join(digests), dtype=f"S{KEY_BYTES}").copy()
    rows = np.asarray(ok, dtype=np.int64) + 1  # global item id of each key
    found, _ = store.get(keys)
    info["cached"] = int(found.sum())
    miss = np.flatnonzero(~found)
    new_keys, first = np.unique(keys[miss], return_index=True)
    encoder = None
    if len(new_keys):
        todo = rows[miss[first]]
        got_keys: list[np.ndarray] = []
        got_vecs: list[np.ndarray] = []
        with tqdm(
            total=len(todo), desc="image features", unit="img", disable=not progress, leave=False
        ) as bar:
            for s in range(0, len(todo), batch_size):
                images, kept = [], []
                for j in range(s, min(s + batch_size, len(todo))):
                    try:
                        images.append(_open_image(paths[todo[j] - 1].read_bytes()))
                        kept.append(j)
                    except Exception:  # PIL raises many types for broken files; the item just has no image
                        continue
                if images and encoder is None:  # loaded only once some image needs it (not for broken files)
                    encoder = ClipImageEncoder(folder, device=device)
                got_keys.append(new_keys[kept])
                got_vecs.append(encoder.encode(images) if images else np.zeros((0, 1), np.float32))
                bar.update(min(batch_size, len(todo) - s))
                pending = sum(len(k) for k in got_keys)
                if pending and (pending >= FLUSH_EVERY or s + batch_size >= len(todo)):  # crash-safe blocks
                    store.put(np.concatenate(got_keys), np.concatenate([v for v in got_vecs if len(v)]))
                    info["computed"] += pending
                    got_keys, got_vecs = [], []
        store.compact()
    found, vecs = store.get(keys)
    info["unreadable"] = int((~found).sum())
    if vecs is not None:
        dim = vecs.shape[1]
    else:  # no readable image at all: the model's width, so the array still has the right shape
        dim = (encoder or ClipImageEncoder(folder, device=device)).dim
    out = np.zeros((n + 1, dim), dtype=np.float32)
    mask = np.zeros(n + 1, dtype=bool)
    out[rows[found]] = vecs if vecs is not None else 0.0
    mask[rows[found]] = True
    info["model"] = identity
    return out, mask, f"clip:{identity}", info
