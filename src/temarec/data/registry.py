"""Find a dataset by name under the data root, or by path, and load it with the right reader."""

from __future__ import annotations

from pathlib import Path

from temarec.data.dataset import CDDataset
from temarec.data.errors import DatasetNotFoundError
from temarec.settings import data_root

# Known folders of the shared data and the domain names their papers use.
KNOWN_DOMAINS = {
    "amazon-food-kitchen": ("Food", "Kitchen"),
    "amazon-art-office": ("Art", "Office"),
    "llmcdsr-food-kitchen": ("Food", "Kitchen"),
}


def detect_format(folder: Path) -> str | None:
    """Which reader a folder needs, from the files it holds."""
    if (folder / "interactions.txt").is_file() and (folder / "item_map.json").is_file():
        return "abxi"
    if (folder / "item_listA_F.csv").is_file() and (folder / "train_F2.txt").is_file():
        return "urllm"
    if (folder / "num.txt").is_file() and (folder / "train_overlap.txt").is_file():
        return "llmcdsr"
    if any((folder / f"items.{ext}").is_file() for ext in ("csv", "parquet")):
        return "canonical"
    return None


def resolve(name_or_path: str, root: Path | None = None) -> Path:
    """A dataset folder from a path, or from a name under the data root."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p
    root = root or data_root()
    cand = root / name_or_path
    if cand.is_dir():
        return cand
    available = sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    raise DatasetNotFoundError(
        f"dataset {name_or_path!r} not found: not a folder, and not under the data root {root} "
        f"(set TEMAREC_DATA). Available there: {available or 'nothing'}; 'demo' is always available."
    )


def load_dataset(name_or_path: str, root: Path | None = None, demo_seed: int = 0) -> CDDataset:
    """`demo`, a name under the data root (e.g. `amazon-food-kitchen`) or a folder path."""
    if name_or_path == "demo":
        from temarec.data.demo import generate_demo

        # another seed is another catalogue under the same item keys: its own name keeps its tags apart
        return generate_demo(seed=demo_seed, name="demo" if demo_seed == 0 else f"demo-seed{demo_seed}")
    folder = resolve(name_or_path, root)
    fmt = detect_format(folder)
    domains = KNOWN_DOMAINS.get(folder.name)
    kw = {"domains": domains} if domains else {}
    if fmt == "abxi":
        from temarec.data.loaders import load_abxi

        return load_abxi(folder, **kw)
    if fmt == "urllm":
        from temarec.data.loaders import load_urllm

        return load_urllm(folder, **kw)
    if fmt == "llmcdsr":
        from temarec.data.loaders import load_llmcdsr

        return load_llmcdsr(folder, **kw)
    if fmt == "canonical":
        from temarec.data.canonical import load_canonical

        return load_canonical(folder)
    raise DatasetNotFoundError(
        f"{folder}: no known dataset format (expected ABXI interactions.txt + item_map.json, URLLM "
        "item_listA_F.csv + train_F2.txt, LLMCDSR num.txt + train_overlap.txt, or canonical items.csv/"
        "interactions.csv)"
    )
