"""How right is the example-echo guard, and would a semantic support check do better? (results/tagging.md)

    python benchmarks/echo_audit.py                 # score the committed labels
    python benchmarks/echo_audit.py --draw          # print a fresh sample to label (does not overwrite)

The guard (`tagging.parse.is_example_echo`) drops a tag of the prompt's worked examples when the item's
title and description do not contain its words (audited here: the example *tags*, `example_tags`; the
pieces of the examples' titles it also drops since session 17 are left out, they are nearly all
wrong). Some of those tags are true all the same ("food" on cereal, "stainless steel" on "Polished
Stainless"), and a semantic check (keep the tag when the text encoder puts it close to the item's
text) was the obvious way to keep them. This script measures both on a seeded random sample of the
tags the guard drops from SmolLM2's amazon-food-kitchen answers
(`ARTIFACTS/tags/amazon-food-kitchen/llamacpp-smollm2-135m`, the unguarded set):

* `results/echo-audit/labels.jsonl` holds one reader's judgement of each sampled (item, tag): `true`
  (the tag describes the item), `false`, or `unclear`, read from the item's title and description only.
  The script draws the sample again and refuses to score labels that are not for it.
* The semantic check is cosine(tag, item text) under the packaged MiniLM (the text the feature stage
  embeds), against thresholds set without labels: the 5th and 10th percentiles of the same cosine for
  tags whose words the item's text does contain (a seeded sample of 4,000 lexically supported tags).

Writes `results/echo-audit/audit.json` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from temarec.data import load_dataset
from temarec.features.build import item_texts
from temarec.features.text_encoder import load_text_encoder
from temarec.settings import artifacts_root
from temarec.tagging.parse import is_example_echo, normalize_tag, text_words
from temarec.tagging.prompts import DEFAULT_PROMPTS
from temarec.tagging.runner import build_requests, read_tags_jsonl

DATASET, SOURCE = "amazon-food-kitchen", "llamacpp-smollm2-135m"
SAMPLE_SEED, SAMPLE_SIZE, REF_SEED, REF_SIZE = 17, 100, 0, 4000
OUT = Path(__file__).resolve().parent.parent / "results" / "echo-audit"


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counted half (Mann-Whitney)."""
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draw", action="store_true", help="print the sample to label and stop")
    args = ap.parse_args()

    ds = load_dataset(DATASET)
    reqs, _ = build_requests(ds, ds.items.index.to_numpy())
    tags, _ = read_tags_jsonl(artifacts_root() / "tags" / DATASET / SOURCE / "tags.jsonl")
    # every (item, tag) the guard drops, and every tag whose words the item's text contains
    echo: list[tuple[int, str, str]] = []
    supported: list[tuple[int, str]] = []
    examples = {d: DEFAULT_PROMPTS.example_tags(d) for d in {r.domain for r in reqs}}
    for r in reqs:
        ex, words = examples[r.domain], text_words(r.title, r.description)
        for t in tags.get(r.item_id) or []:
            if is_example_echo(t, ex, words):
                echo.append((r.item_id, r.domain, t))
            elif (c := normalize_tag(t)) and all(w in words for w in c.split()):
                supported.append((r.item_id, t))
    sample = sorted(random.Random(SAMPLE_SEED).sample(range(len(echo)), SAMPLE_SIZE))
    title = ds.items["title"]
    if args.draw:
        for n, k in enumerate(sample):
            i, d, t = echo[k]
            print(n, d, "|", t, "|", str(title.get(i, ""))[:110])
        return

    labels = [json.loads(line) for line in (OUT / "labels.jsonl").read_text().splitlines() if line.strip()]
    drawn = [(echo[k][0], echo[k][2]) for k in sample]
    if [(row["item_id"], row["tag"]) for row in labels] != drawn:
        raise SystemExit("labels.jsonl is not for this sample (the tags or the guard changed): draw again")

    texts, _ = item_texts(ds.items)
    enc = load_text_encoder()

    def cosine(pairs: list[tuple[int, str]]) -> np.ndarray:
        rows = ds.items.index.get_indexer([i for i, _ in pairs])
        a = enc.encode([texts[n] for n in rows])
        b = enc.encode([t for _, t in pairs])
        return (a * b).sum(1)

    ref = cosine(random.Random(REF_SEED).sample(supported, min(REF_SIZE, len(supported))))
    cos_all = cosine([(i, t) for i, _, t in echo])
    cos = cos_all[sample]
    lab = np.array([row["label"] for row in labels])
    counts = {k: int((lab == k).sum()) for k in ("true", "false", "unclear")}
    dom = np.array([row["domain"] for row in labels])
    by_domain = {d: {k: int(((dom == d) & (lab == k)).sum()) for k in counts} for d in sorted(set(dom))}
    thresholds = {
        "p5 of supported": float(np.percentile(ref, 5)),
        "p10 of supported": float(np.percentile(ref, 10)),
    }
    rows = []
    for name, th in thresholds.items():
        keep = cos >= th
        kept = {k: int((keep & (lab == k)).sum()) for k in counts}
        rows.append(
            {
                "threshold": name,
                "cosine": round(th, 4),
                "kept": kept,
                "kept_of_all_dropped": int((cos_all >= th).sum()),
            }
        )
    res = {
        "dataset": DATASET,
        "source": SOURCE,
        "dropped_by_guard": len(echo),
        "sample": {"seed": SAMPLE_SEED, "size": SAMPLE_SIZE, "labels": counts, "by_domain": by_domain},
        "encoder": enc.identity,
        "supported_reference": {"seed": REF_SEED, "size": len(ref)},
        "auc_true_vs_false": round(auc(cos[lab == "true"], cos[lab == "false"]), 4),
        "cosine_median": {k: round(float(np.median(cos[lab == k])), 4) for k in counts if counts[k]},
        "semantic_rescue": rows,
    }
    (OUT / "audit.json").write_text(json.dumps(res, indent=2) + "\n")
    n = SAMPLE_SIZE
    print(
        f"{len(echo):,} tags dropped by the guard; sample of {n} (seed {SAMPLE_SEED}): "
        f"{counts['true']} true, {counts['false']} false, {counts['unclear']} unclear"
    )
    for d, c in by_domain.items():
        print(f"  {d}: {c['true']} true, {c['false']} false, {c['unclear']} unclear")
    print(f"AUC of the cosine, true against false: {res['auc_true_vs_false']:.2f}\n")
    print("| keep a dropped tag when cosine >= | value | true kept | false kept | unclear kept | of all |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        k = r["kept"]
        print(
            f"| {r['threshold']} | {r['cosine']:.3f} | {k['true']}/{counts['true']} | "
            f"{k['false']}/{counts['false']} | {k['unclear']}/{counts['unclear']} | "
            f"{r['kept_of_all_dropped']:,}/{len(echo):,} |"
        )
    print(f"\nwrote {OUT / 'audit.json'}")


if __name__ == "__main__":
    main()
