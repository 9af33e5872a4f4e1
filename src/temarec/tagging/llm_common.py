"""What the chat-model backends share: prompts, answer rules, and the parse-then-retry loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temarec.tagging.base import Pass, TagRequest, TagResult
from temarec.tagging.parse import TRANSIENT, TagRules, parse_tags
from temarec.tagging.prompts import DEFAULT_PROMPTS, PromptSet, tag_schema


def rules_for(prompts: PromptSet) -> TagRules:
    """Answer rules matching a prompt set: up to its max_tags kept, a runaway list rejected."""
    return TagRules(max_tags=prompts.max_tags, hard_max_tags=max(30, 4 * prompts.max_tags))


class ChatTagger:
    """Base of chat backends: renders prompts, parses answers, retries bad ones at a higher temperature."""

    supports_refine = True

    def __init__(
        self,
        prompts: PromptSet | None = None,
        rules: TagRules | None = None,
        temperature: float = 0.0,
        retries: int = 2,
        retry_temperature: float = 0.7,
        max_tokens: int = 96,
        seed: int = 0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
    ) -> None:
        if retries < 0 or max_tokens < 8:
            raise ValueError("retries must be >= 0 and max_tokens >= 8")
        self.prompts = prompts or DEFAULT_PROMPTS
        self.rules = rules or rules_for(self.prompts)
        self.temperature = float(temperature)
        self.retries = int(retries)
        self.retry_temperature = float(retry_temperature)
        self.max_tokens = int(max_tokens)
        self.seed = int(seed)
        # small models repeat one tag until the list is full; penalties make them move on
        self.frequency_penalty = float(frequency_penalty)
        self.presence_penalty = float(presence_penalty)
        self.schema = tag_schema(self.prompts.max_tags, self.prompts.min_tags, self.rules.max_tag_chars)

    @property
    def prompt_identity(self) -> str:
        return self.prompts.identity

    def _settings_identity(self) -> str:
        """The decoding settings that change answers (retries too: they decide which answer is kept)."""
        retry = f"r{self.retries}@{self.retry_temperature:g}"
        pen = f"fp{self.frequency_penalty:g}:pp{self.presence_penalty:g}"
        return f"t{self.temperature:g}:mt{self.max_tokens}:{pen}:{retry}:s{self.seed}"

    def attempt_params(self, attempt: int) -> tuple[float, int]:
        """(temperature, seed) of attempt k: the configured ones first, then warmer, differently seeded."""
        if attempt == 0:
            return self.temperature, self.seed
        return max(self.temperature, self.retry_temperature), self.seed + 1000 * attempt

    def answer_one(
        self,
        req: TagRequest,
        pass_: Pass,
        complete: Callable[[list[dict], float, int], tuple[str, str | None]],
    ) -> TagResult:
        """Ask, parse, retry on a bad answer; `complete(messages, temperature, seed)` -> (text, error)."""
        messages = self.prompts.messages(req, pass_)
        last_err, last_raw = "empty", ""
        for attempt in range(self.retries + 1):
            temp, seed = self.attempt_params(attempt)
            raw, err = complete(messages, temp, seed)
            if err is not None:  # transport failure: the transport already retried
                return TagResult(req.item_id, raw=raw, error=err, attempts=attempt + 1)
            parsed = parse_tags(raw, req.title, req.description, self.rules)
            if parsed.ok:
                return TagResult(req.item_id, parsed.tags, parsed.weights, raw=raw, attempts=attempt + 1)
            last_err, last_raw = parsed.error or "empty", raw
        return TagResult(req.item_id, raw=last_raw, error=last_err, attempts=self.retries + 1)

    async def answer_one_async(
        self,
        req: TagRequest,
        pass_: Pass,
        complete: Callable[[list[dict], float, int], Awaitable[tuple[str, str | None]]],
    ) -> TagResult:
        """`answer_one` for an async transport."""
        messages = self.prompts.messages(req, pass_)
        last_err, last_raw = "empty", ""
        for attempt in range(self.retries + 1):
            temp, seed = self.attempt_params(attempt)
            raw, err = await complete(messages, temp, seed)
            if err is not None:
                return TagResult(req.item_id, raw=raw, error=err, attempts=attempt + 1)
            parsed = parse_tags(raw, req.title, req.description, self.rules)
            if parsed.ok:
                return TagResult(req.item_id, parsed.tags, parsed.weights, raw=raw, attempts=attempt + 1)
            last_err, last_raw = parsed.error or "empty", raw
        return TagResult(req.item_id, raw=last_raw, error=last_err, attempts=self.retries + 1)


__all__ = ["ChatTagger", "rules_for", "TRANSIENT"]
