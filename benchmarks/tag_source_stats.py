"""What two full-catalogue tag sets of one dataset look like side by side (results/tagging.md).

    python benchmarks/tag_source_stats.py --dataset amazon-food-kitchen \
        --source keyphrase --source llamacpp-smollm2-135m

Per source, from `ARTIFACTS/tags/DATASET/SOURCE/` (`tags.jsonl`, `summary.json`): items
tagged, tags per item, distinct tags, vocabulary size, the share of 2+ word tags copied verbatim from the
title (`copy`), and the share of items carrying a tag of the prompt's worked examples that occurs nowhere
in the item's own title or description (`few-shot echo`: the model repeating its examples instead of
reading the item; for a backend without prompts it measures chance overlap). Also the most frequent
tags. Writes `tag-sources.json` beside the tag sets and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from tagging_bench import copy_rate

from temarec.data import load_dataset
from temarec.settings import artifacts_root
from temarec.tagging.base import TagRequest
from temarec.tagging.parse import is_example_echo, text_words
from temarec.tagging.prompts import DEFAULT_PROMPTS
from temarec.tagging.runner import build_requests, read_tags_jsonl


def few_shot_echo(tags: dict[int, list[str]], reqs: list[TagRequest]) -> float:
    """Share of tagged items with a tag the example-echo guard drops (`parse.is_example_echo`): one of
    the built-in prompts' worked-example phrases (their tags, pieces of their items' text) that the
    item's own text does not support."""
    examples = {d: DEFAULT_PROMPTS.example_phrases(d) for d in {r.domain for r in reqs}}
    hit = 0
    for r in reqs:
        if r.item_id in tags:
            ex, words = examples[r.domain], text_words(r.title, r.description)
            hit += any(is_example_echo(t, ex, words) for t in tags[r.item_id])
    return hit / len(tags) if tags else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="amazon-food-kitchen")
    ap.add_argument("--source", action="append", required=True, help="tag set folder name (repeatable)")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()

    ds = load_dataset(args.dataset)
    # the items' text as the tagger read it (items without any text are never tagged)
    reqs, _ = build_requests(ds, ds.items.index.to_numpy())
    titles = {r.item_id: r.title or "" for r in reqs}

    root = artifacts_root() / "tags" / args.dataset
    out = {}
    for src in args.source:
        folder = root / src
        tags, _ = read_tags_jsonl(folder / "tags.jsonl")
        tags = {i: t for i, t in tags.items() if t}
        summary = json.loads((folder / "summary.json").read_text())
        counts = Counter(t.lower() for ts in tags.values() for t in ts)
        out[src] = {
            "backend": summary.get("backend"),
            "items_tagged": len(tags),
            "failed": summary.get("failed"),
            "tags_per_item": round(sum(map(len, tags.values())) / len(tags), 3),
            "distinct_tags": len(counts),
            "vocab_size": summary.get("vocab_size"),  # absent when the run built no vocabulary
            "copy_rate": round(copy_rate(tags, titles), 4),
            "few_shot_echo": round(few_shot_echo(tags, reqs), 4),
            "top_tags": counts.most_common(args.top),
            "workers": summary.get("workers"),
        }
    path = root / "tag-sources.json"
    path.write_text(json.dumps(out, indent=2))
    print("| source | items tagged | tags/item | distinct tags | vocabulary | copy | few-shot echo |")
    print("|---|---|---|---|---|---|---|")
    for src, s in out.items():
        vocab = format(s["vocab_size"], ",") if s["vocab_size"] else "–"
        print(
            f"| {src} | {s['items_tagged']:,} | {s['tags_per_item']:.2f} | {s['distinct_tags']:,} | "
            f"{vocab} | {s['copy_rate']:.1%} | {s['few_shot_echo']:.1%} |"
        )
    for src, s in out.items():
        print(f"\n{src}, most frequent: " + ", ".join(f"{t} ({n})" for t, n in s["top_tags"]))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
