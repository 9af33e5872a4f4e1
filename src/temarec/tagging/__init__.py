"""Stage 1: LLM tags for every item (domain-aware prompts, self-refinement, a crash-proof cache).

Backends share one interface (`TagBackend`); `get_backend(name, **options)` builds one by name:
`llamacpp` (local GGUF, in-process), `openai` (any OpenAI-compatible server), `file` (imported tags),
`keyphrase` (no LLM: keyphrases by embedding similarity). `tag_dataset` runs one over a catalogue.
"""

from __future__ import annotations

from temarec.tagging.base import BackendFatalError, Pass, TagBackend, TagRequest, TagResult

BACKENDS = ("llamacpp", "openai", "file", "keyphrase")


def get_backend(name: str, **options) -> TagBackend:
    """A backend by name; options are its constructor's keyword arguments (None values are dropped).

    Imports are lazy: llama-cpp-python, httpx and sentence-transformers are optional extras.
    """
    opts = {k: v for k, v in options.items() if v is not None}
    if name == "llamacpp":
        from temarec.tagging.llamacpp import LlamaCppBackend

        return LlamaCppBackend(**opts)
    if name == "openai":
        from temarec.tagging.openai_backend import OpenAIBackend

        return OpenAIBackend(**opts)
    if name == "file":
        from temarec.tagging.file_backend import FileBackend

        return FileBackend(**opts)
    if name == "keyphrase":
        from temarec.tagging.keyphrase import KeyphraseBackend

        return KeyphraseBackend(**opts)
    raise ValueError(f"unknown tagging backend {name!r}; known: {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "BackendFatalError",
    "Pass",
    "TagBackend",
    "TagRequest",
    "TagResult",
    "get_backend",
]
