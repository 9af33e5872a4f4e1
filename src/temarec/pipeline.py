"""The whole TEMA-LLM pipeline as functions: tag a catalogue, build its vocabulary, train, compare.

The CLI's `tag` command exposes every option; `tag_catalogue` is the short path the demo and scripts use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from temarec.data.dataset import CDDataset
from temarec.settings import slug, tags_root


def llamacpp_available() -> bool:
    try:
        # this module first: it sets OpenMP's wait policy, which llama_cpp's OpenMP reads when loaded
        from temarec.tagging.llamacpp import default_model_path

        importlib.import_module("llama_cpp")
        return default_model_path().is_file()
    except (ImportError, OSError, RuntimeError):
        return False


def choose_demo_tagger(tagger: str, llm_available: Callable[[], bool]) -> tuple[str, str]:
    """The tagger the demo runs and a line saying why, where it is not the one asked for: `auto` means
    the local LLM where llama.cpp and its model are installed (the method's own stage 1), else keyphrase
    extraction, so that the quickstart runs everywhere and says which it ran."""
    if tagger not in ("auto", "llamacpp", "keyphrase", "none"):
        raise ValueError(f"unknown tagger {tagger!r}; choose auto, llamacpp, keyphrase or none")
    if tagger not in ("auto", "llamacpp"):
        return tagger, ""
    if llm_available():
        return "llamacpp", ""
    return "keyphrase", (
        "llama-cpp-python or the SmolLM2 model (the llm extra) is not installed: "
        "tagging with keyphrase extraction instead of an LLM"
    )


def tag_catalogue(
    ds: CDDataset,
    backend: str = "keyphrase",
    source: str | None = None,
    refine: bool = False,
    progress: bool = True,
    **backend_options,
) -> tuple[str, dict]:
    """Tag every item of `ds` (cached), build and save the tag vocabulary; returns (source name, summary)."""
    from temarec.tagging import get_backend
    from temarec.tagging.cache import TagCache
    from temarec.tagging.runner import TagRunOptions, tag_dataset, write_tag_source

    source = source or (backend + ("-refined" if refine else ""))
    root = tags_root(ds.name)
    out = tag_folder(ds, source)
    be = get_backend(backend, **backend_options)
    try:
        with TagCache(root / "cache.sqlite") as store:
            opts = TagRunOptions(
                refine=refine, progress=progress, batch_size=8 if backend == "llamacpp" else 64
            )
            res = tag_dataset(ds, be, store, opts)
    finally:
        be.close()
    vocab = write_tag_source(res, ds, out, source, progress=progress)
    if vocab is None:  # said here, not later as "no tag source found" right after tagging
        reasons = ", ".join(f"{r}: {n}" for r, n in res.summary["failed_by_reason"].items()) or "no text"
        raise ValueError(f"{ds.name}: no item got tags from {backend} ({reasons}); see {out / 'tags.jsonl'}")
    summary = dict(res.summary, vocab_size=len(vocab), folder=str(out))
    return slug(source), summary


def tag_folder(ds: CDDataset, source: str) -> Path:
    return tags_root(ds.name) / slug(source)
