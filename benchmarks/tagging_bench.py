"""Tagging benchmark: speed, tags per item, vocabulary, failures, agreement with third-party LLM tags.

    python benchmarks/tagging_bench.py --dataset amazon-art-office --sample 500 --seed 0 --threads 2

Runs every backend that is runnable here on one fixed random sample of items (the runner's `--sample N
--sample-seed S`), each through its own fresh cache (so speeds are real model time, not cache reads), and
compares the tags with the imported third-party tags (`third_party_llm_tags.json`, deepseek output) by
embedding similarity (`tag_agreement`, MiniLM, cosine >= threshold). Writes `bench.json` and `examples.md`
into --out and prints a markdown table for results/tagging.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before llama_cpp loads (see tagging/llamacpp.py)

import numpy as np  # noqa: E402

from temarec.data import load_dataset  # noqa: E402
from temarec.settings import artifacts_root, data_root  # noqa: E402
from temarec.tagging import get_backend  # noqa: E402
from temarec.tagging.cache import TagCache  # noqa: E402
from temarec.tagging.runner import TagRunOptions, tag_dataset  # noqa: E402


def _words(s: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in s.lower()).split()


def copy_rate(tags: dict[int, list[str]], titles: dict[int, str]) -> float:
    """Share of 2+ word tags that are a verbatim word run of the item's title (copying, not tagging)."""
    n = hit = 0
    for iid, ts in tags.items():
        title = " " + " ".join(_words(titles.get(iid) or "")) + " "
        for t in ts:
            w = _words(t)
            if len(w) >= 2:
                n += 1
                hit += f" {' '.join(w)} " in title
    return hit / n if n else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="amazon-art-office")
    ap.add_argument("--sample", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--thresholds", default="0.7,0.8")
    ap.add_argument("--backends", default="keyphrase,llamacpp,llamacpp+refine")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--resume", action="store_true", help="keep the caches of an interrupted run")
    ap.add_argument(
        "--frequent",
        type=float,
        default=0.05,
        help="reference tags on more than this share of items are generic",
    )
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from temarec.features.text_encoder import load_text_encoder
    from temarec.tagging.agreement import tag_agreement
    from temarec.tagging.vocab import build_vocab

    out = args.out or artifacts_root() / "bench" / "tagging" / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(args.dataset)
    enc = load_text_encoder()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    opts = TagRunOptions(sample=args.sample, sample_seed=args.seed, progress=True)
    titles = ds.items["title"].to_dict()

    # the reference: imported third-party tags for the same sample
    ref_file = data_root() / args.dataset / "third_party_llm_tags.json"
    ref = None
    report: dict = {
        "dataset": args.dataset,
        "sample": args.sample,
        "sample_seed": args.seed,
        "threads": args.threads,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "encoder": enc.identity,
        "load_avg_start": os.getloadavg(),
        "sources": {},
    }
    if ref_file.is_file():
        be = get_backend("file", path=ref_file)
        with TagCache(out / "cache-file.sqlite") as c:
            rr = tag_dataset(
                ds, be, c, TagRunOptions(sample=args.sample, sample_seed=args.seed, progress=False)
            )
        ref = rr.tags
        ref_specific, frequent = _without_frequent(ref, args.frequent)
        report["frequent_reference_tags"] = frequent
        report["sources"]["third-party (file)"] = _describe(rr, ds, enc, build_vocab, titles, 0.0)

    results = {}
    previous = {}
    if args.resume and (out / "bench.json").is_file():
        previous = json.loads((out / "bench.json").read_text()).get("sources", {})
        report["timings_measured"] = json.loads((out / "bench.json").read_text()).get("load_avg_start")
    for name in args.backends.split(","):
        cache_path = out / f"cache-{name.replace('+', '-')}.sqlite"
        if not args.resume and cache_path.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(str(cache_path) + suffix).unlink(missing_ok=True)
        t0 = time.perf_counter()
        if name.startswith("llamacpp"):
            be = get_backend("llamacpp", n_threads=args.threads)
        else:
            be = get_backend(name, encoder=enc)
        load_s = time.perf_counter() - t0
        refine = name.endswith("+refine")
        with TagCache(cache_path) as c:
            if refine and (out / "cache-llamacpp.sqlite").exists():
                c.merge_from(out / "cache-llamacpp.sqlite")  # the first pass is the plain llamacpp run's
            res = tag_dataset(ds, be, c, TagRunOptions(**{**opts.__dict__, "refine": refine}))
        be.close()
        gen_s = res.summary["generate"]["seconds"]
        if refine and res.summary["generate"]["asked"] == 0:
            gen_s = (
                results["llamacpp"].summary["generate"]["seconds"] if "llamacpp" in results else float("nan")
            )
        total_s = gen_s + (res.summary["refine_pass"]["seconds"] if res.summary["refine_pass"] else 0.0)
        d = _describe(res, ds, enc, build_vocab, titles, load_s)
        d["items_per_s"] = round((d["selected"] - d["no_text"]) / total_s, 3) if total_s > 0 else None
        d["seconds_per_item"] = round(total_s / max(1, d["selected"] - d["no_text"]), 3)
        if ref is not None:
            d["agreement"] = {
                f"{t:g}": tag_agreement(res.tags, {k: ref[k] for k in res.tags if k in ref}, enc, threshold=t)
                for t in thresholds
            }
            # without the reference's category-path words ("arts", "crafts", "office products"...), which
            # sit verbatim in every item's description: agreement on what is specific to the item
            d["agreement_specific"] = tag_agreement(
                res.tags, {k: ref_specific[k] for k in res.tags if k in ref_specific}, enc, thresholds[0]
            )
        if args.resume and res.summary["model_calls"] == 0 and name in previous:
            # everything came from the cache: the speed is the one measured when it was computed
            for key in ("items_per_s", "seconds_per_item", "load_seconds", "generate", "refine_pass"):
                d[key] = previous[name].get(key)
            d["timings_from"] = "previous run (resumed from cache)"
        report["sources"][name] = d
        results[name] = res
        print(json.dumps({name: d}, indent=1, default=float), flush=True)

    report["load_avg_end"] = os.getloadavg()
    (out / "bench.json").write_text(json.dumps(report, indent=2, default=float))
    _examples(out / "examples.md", ds, ref, results, n=12)
    print(_table(report, thresholds))
    print(f"wrote {out / 'bench.json'} and {out / 'examples.md'}")


def _without_frequent(ref: dict[int, list[str]], share: float) -> tuple[dict[int, list[str]], list[str]]:
    """The reference without tags (canonical form) that occur on more than `share` of its items."""
    from collections import Counter

    from temarec.tagging.normalize import normalize_tag

    canon = {k: [(t, normalize_tag(t)) for t in v] for k, v in ref.items()}
    counts = Counter(c for v in canon.values() for c in {c for _, c in v if c})
    frequent = sorted(c for c, n in counts.items() if n > share * len(ref))
    drop = set(frequent)
    return {k: [t for t, c in v if c and c not in drop] for k, v in canon.items()}, frequent


def _describe(res, ds, enc, build_vocab, titles, load_s: float) -> dict:
    st = res.summary
    asked_items = st["selected"] - st["no_text"]
    voc = build_vocab(res.tags, res.weights, ds.item_domain, encoder=enc, source="bench", domains=ds.domains)
    raw_unique = len({t for ts in res.tags.values() for t in ts})
    d = {
        "backend": st["backend"],
        "prompt": st["prompt"],
        "selected": st["selected"],
        "no_text": st["no_text"],
        "tagged": st["tagged"],
        "failed": st["failed"],
        "failure_rate": round(st["failed"] / asked_items, 4) if asked_items else None,
        "failed_by_reason": st["failed_by_reason"],
        "tags_per_item": st["tags_per_item"],
        "unique_tags": raw_unique,
        "vocab_size": len(voc),
        "vocab_stats": voc.stats(),
        "copy_rate": round(copy_rate(res.tags, titles), 4),
        "load_seconds": round(load_s, 2),
        "generate": st["generate"],
        "refine_pass": st["refine_pass"],
    }
    return d


def _table(report: dict, thresholds: list[float]) -> str:
    head = "| source | items/s | s/item | tags/item | unique tags | vocab | failed | copy | " + " | ".join(
        f"P/R/F1 @{t:g}" for t in thresholds
    )
    head += f" | specific P/R/F1 @{thresholds[0]:g}"
    lines = [head + " |", "|" + "---|" * (9 + len(thresholds))]
    for name, d in report["sources"].items():
        ag = d.get("agreement") or {}
        cells = [
            f"{ag[f'{t:g}']['precision']:.3f} / {ag[f'{t:g}']['recall']:.3f} / {ag[f'{t:g}']['f1']:.3f}"
            if f"{t:g}" in ag
            else "(reference)"
            for t in thresholds
        ]
        sp = d.get("agreement_specific")
        cells.append(f"{sp['precision']:.3f} / {sp['recall']:.3f} / {sp['f1']:.3f}" if sp else "(reference)")
        ips = d.get("items_per_s")
        lines.append(
            f"| {name} | {ips if ips is not None else '-'} | {d.get('seconds_per_item', '-')} | "
            f"{d['tags_per_item']:.2f} | {d['unique_tags']} | {d['vocab_size']} | "
            f"{d['failure_rate']:.1%} | {d['copy_rate']:.1%} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def _examples(path: Path, ds, ref, results: dict, n: int) -> None:
    ids = sorted(next(iter(results.values())).tags)[:: max(1, len(next(iter(results.values())).tags) // n)][
        :n
    ]
    rng_lines = [
        "| title | " + " | ".join(["third-party", *results]) + " |",
        "|" + "---|" * (2 + len(results)),
    ]
    for iid in ids:
        cells = [", ".join(ref.get(iid, [])) if ref else ""]
        cells += [", ".join(r.tags.get(iid, [])) or f"({r.errors.get(iid, '-')})" for r in results.values()]
        rng_lines.append(f"| {str(ds.items.at[iid, 'title'])[:70]} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(rng_lines) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
