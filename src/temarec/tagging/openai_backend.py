"""Tags from any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama's /v1, hosted APIs).

Requests run concurrently (asyncio, at most `concurrency` in flight), and no faster than `max_rps` per
second when it is set (hosted APIs count a 429 against the quota, so it is better not to provoke them;
the limit holds per backend, that is per process). Timeouts, network errors, 429 and 5xx
are retried with exponential backoff and jitter, honouring `Retry-After`; a reply that is not a chat
completion is retried the same way. Structured output is asked for where the server supports it: JSON schema
first, then JSON object mode (with the schema, as llama.cpp's servers accept it), then plain text; the first
format a server rejects (HTTP 400/422) is dropped for the rest of the run. A bad key or unknown model stops
the run (`BackendFatalError`) instead of failing every item, and so does a server that never answers: when
`give_up_after` items (the concurrency, at least 3) have used up their retries on network errors or
timeouts before any request of this backend succeeded, the run stops (a server that is down, a wrong URL
or a timeout too short for the model would otherwise cost every item its full backoff). Fewer such items,
or any after a first success, fail on their own and are transient (asked again by the next run); so do
429 and 5xx answers, which come from a server that is up.

The cache identity is the model name the server reports plus the decoding settings, not the URL: moving
a server keeps its answers. Two servers serving different weights under one model name need their own
`--cache` (or `--model` names that differ).

Settings come from arguments, else the environment: `TEMAREC_OPENAI_BASE_URL` / `OPENAI_BASE_URL`,
`TEMAREC_OPENAI_MODEL` / `OPENAI_MODEL`, `TEMAREC_OPENAI_API_KEY` / `OPENAI_API_KEY`. The key is never part
of the identity, logs or cache.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import threading
import time
from typing import Literal

from temarec.tagging.base import BackendFatalError, Pass, TagRequest, TagResult
from temarec.tagging.llm_common import ChatTagger
from temarec.tagging.parse import BAD_RESPONSE, HTTP, NETWORK, TIMEOUT, TagRules
from temarec.tagging.prompts import PromptSet

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
Format = Literal["auto", "json_schema", "json_object", "none"]
_FORMAT_CHAIN = ("json_schema", "json_object", "none")


def _env(*names: str) -> str | None:
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    return None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if dt is None:
        return None
    return max(0.0, dt.timestamp() - (now if now is not None else time.time()))


def _about_format(text: str) -> bool:
    """The server's error is about the response format (llama_cpp.server even says so with HTTP 500)."""
    low = text.lower()
    return any(w in low for w in ("response_format", "json_schema", "response format"))


class OpenAIBackend(ChatTagger):
    """Chat-completions client with bounded concurrency, retries and structured output."""

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 4,
        max_rps: float | None = None,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        response_format: Format = "auto",
        prompts: PromptSet | None = None,
        rules: TagRules | None = None,
        temperature: float = 0.0,
        retries: int = 2,
        max_tokens: int = 128,
        seed: int = 0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        extra_body: dict | None = None,
        transport=None,  # an httpx transport, for tests
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
            import httpx  # noqa: F401
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("the openai backend needs httpx: pip install 'temarec[llm]'") from e
        if concurrency < 1 or timeout <= 0 or max_retries < 0:
            raise ValueError("concurrency >= 1, timeout > 0 and max_retries >= 0 are required")
        if max_rps is not None and not max_rps > 0:
            raise ValueError(f"max_rps must be > 0 requests per second, not {max_rps}")
        if response_format not in ("auto", *_FORMAT_CHAIN):
            raise ValueError(
                f"response_format must be auto, json_schema, json_object or none, not {response_format}"
            )
        self.base_url = (
            base_url or _env("TEMAREC_OPENAI_BASE_URL", "OPENAI_BASE_URL") or DEFAULT_BASE_URL
        ).rstrip("/")
        self._model = model or _env("TEMAREC_OPENAI_MODEL", "OPENAI_MODEL")
        self._api_key = api_key or _env("TEMAREC_OPENAI_API_KEY", "OPENAI_API_KEY")
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self._formats = list(_FORMAT_CHAIN) if response_format == "auto" else [response_format]
        self.extra_body = dict(extra_body or {})
        self.transport = transport
        self.requests_sent = 0  # HTTP requests, retries included
        self.max_rps = float(max_rps) if max_rps is not None else None
        self._next_slot = 0.0  # monotonic time the next request may go (kept across batches)
        self._reached = False  # some request got a 200: failures are the item's, not the server's
        self._given_up = 0  # items that used up their retries on network errors or timeouts, before that
        #: that many such items without any success stop the run (one or two may be items the server
        #: cannot answer in time, left for a rerun; a whole first wave of requests is the server)
        self.give_up_after = max(3, self.concurrency)

    # ---- identity --------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        """The model name; asked from the server's /models when not configured (llama.cpp, vLLM serve one)."""
        if self._model is None:
            self._model = self._discover_model()
        return self._model

    def _discover_model(self) -> str:
        import httpx

        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport, headers=self._headers()) as c:
                r = c.get(f"{self.base_url}/models")
                r.raise_for_status()
                data = r.json().get("data") or []
                return str(data[0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            raise BackendFatalError(
                f"no model given and {self.base_url}/models did not name one ({e}); pass --model or set "
                "TEMAREC_OPENAI_MODEL"
            ) from e

    @property
    def identity(self) -> str:
        return f"openai:{self.model}:{self._settings_identity()}"

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        return h

    # ---- tagging ---------------------------------------------------------------------------------
    def tag(self, requests: list[TagRequest], pass_: Pass = "generate") -> list[TagResult]:
        if not requests:
            return []
        _ = self.model  # resolve before going async
        coro_factory = lambda: self._tag_all(requests, pass_)  # noqa: E731
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro_factory())
        # called from inside an event loop (a notebook): run ours in a thread, and its errors here
        box: dict = {}

        def work() -> None:
            try:
                box["r"] = asyncio.run(coro_factory())
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread below
                box["e"] = e

        t = threading.Thread(target=work, daemon=True)
        t.start()
        t.join()
        if "e" in box:
            raise box["e"]
        return box["r"]

    async def _tag_all(self, requests: list[TagRequest], pass_: Pass) -> list[TagResult]:
        import httpx

        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        sem = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            headers=self._headers(),
            limits=limits,
            transport=self.transport,
        ) as client:

            async def one(req: TagRequest) -> TagResult:
                async def complete(
                    messages: list[dict], temperature: float, seed: int
                ) -> tuple[str, str | None]:
                    async with sem:
                        return await self._chat(client, messages, temperature, seed)

                return await self.answer_one_async(req, pass_, complete)

            return list(await asyncio.gather(*(one(r) for r in requests)))

    def _body(self, messages: list[dict], temperature: float, seed: int, fmt: str) -> dict:
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": self.max_tokens,
            "seed": seed,
            **({"frequency_penalty": self.frequency_penalty} if self.frequency_penalty else {}),
            **({"presence_penalty": self.presence_penalty} if self.presence_penalty else {}),
            **self.extra_body,
        }
        if fmt == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "tags", "schema": self.schema, "strict": True},
            }
        elif fmt == "json_object":
            body["response_format"] = {"type": "json_object", "schema": self.schema}
        return body

    async def _wait_for_slot(self) -> None:
        """Space requests 1/max_rps seconds apart (every HTTP request, retries included). Taking the
        slot has no `await` in it, so the coroutines of one event loop cannot interleave there."""
        if self.max_rps is None:
            return
        now = time.monotonic()
        at = max(now, self._next_slot)
        self._next_slot = at + 1.0 / self.max_rps
        if at > now:
            await asyncio.sleep(at - now)

    def _delay(self, k: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, max(self.backoff_max, 120.0))
        return min(self.backoff_max, self.backoff * 2**k) * random.uniform(0.5, 1.5)

    async def _chat(
        self, client, messages: list[dict], temperature: float, seed: int
    ) -> tuple[str, str | None]:
        """(content, None) or ("", reason) after retries; raises BackendFatalError on auth/model errors."""
        import httpx

        url = f"{self.base_url}/chat/completions"
        k = 0
        last = (NETWORK, "")
        while True:
            fmt = self._formats[0]
            retry_after: float | None = None
            await self._wait_for_slot()
            try:
                self.requests_sent += 1
                r = await client.post(url, json=self._body(messages, temperature, seed, fmt))
            except httpx.TimeoutException as e:
                last = (TIMEOUT, f"{type(e).__name__}: {e}")
            except httpx.TransportError as e:
                last = (NETWORK, f"{type(e).__name__}: {e}")
            else:
                if r.status_code == 200:
                    self._reached = True
                    try:
                        content = r.json()["choices"][0]["message"]["content"]
                        if not isinstance(content, str):
                            raise TypeError("content is not a string")
                        return content, None
                    except (ValueError, KeyError, IndexError, TypeError) as e:
                        last = (BAD_RESPONSE, f"{type(e).__name__}: {r.text[:300]}")
                elif r.status_code in (400, 422, 500) and len(self._formats) > 1 and _about_format(r.text):
                    if self._formats[0] == fmt:  # concurrent requests may have downgraded already
                        self._formats.pop(0)
                        log.info("server rejected response_format %s; now %s", fmt, self._formats[0])
                    continue  # a format downgrade is not a retry
                elif r.status_code in (401, 403, 404):
                    raise BackendFatalError(f"{url}: HTTP {r.status_code}: {r.text[:300]}")
                elif r.status_code == 429 or r.status_code >= 500:
                    last = (HTTP, f"HTTP {r.status_code}: {r.text[:300]}")
                    retry_after = parse_retry_after(r.headers.get("retry-after"))
                else:  # other 4xx: this request is bad, retrying will not help
                    return f"HTTP {r.status_code}: {r.text[:300]}", HTTP
            if k >= self.max_retries:
                if last[0] in (NETWORK, TIMEOUT) and not self._reached:
                    self._given_up += 1
                    if self._given_up >= self.give_up_after:
                        hint = (
                            f"; a slow model (or long items) may need more than --timeout {self.timeout:g}"
                            if last[0] == TIMEOUT
                            else ""
                        )
                        raise BackendFatalError(
                            f"{url}: no request has succeeded yet, and {self._given_up} items used up their "
                            f"{k + 1} attempts (last: {last[1]}); is the server up at {self.base_url}?{hint}"
                        )
                return last[1], last[0]
            await asyncio.sleep(self._delay(k, retry_after))
            k += 1

    def close(self) -> None:
        pass
