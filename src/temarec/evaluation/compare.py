"""Compare two groups of finished runs with paired per-user tests (`temarec compare`).

The bench report tests its variants against each other; this is the same test for any two sets of runs
a user made (two tag sources, two recipes, a new model against a baseline): each group is usually the seed
folders of one configuration. The runs must have been ranked on the same test instances with the same
protocol settings (dataset, split, candidate draw, history exclusion, tie rule); anything else is refused
with the field that differs, since the pairing would then be meaningless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from temarec.evaluation.significance import ALPHA, compare_models_by_metric, format_p, significant

METRICS = ("HR@10", "NDCG@10", "MRR")
#: fields of a metrics document that must agree across every run compared (the protocol's identity)
MUST_AGREE = ("dataset", "data_fingerprint", "split", "protocol", "candidate_seed", "exclude_history", "ties")
MAY_LACK = frozenset({"data_fingerprint"})


@dataclass(frozen=True)
class RunInfo:
    """One finished run: its folder and the metrics document of the protocol compared."""

    dir: Path
    doc: dict

    @property
    def label(self) -> str:
        return f"{self.doc.get('model', '?')}/seed{self.doc.get('seed', '?')}"


def metrics_doc(run_dir: Path, protocol: str) -> dict:
    """The metrics document of `protocol` in a run folder, found where `temarec train` / `evaluate`
    put it (`training.run.metrics_files`), checked to carry the ranks a paired test needs."""
    from temarec.serving.load import read_run_config
    from temarec.training.run import metrics_files, require_finished

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir}: not a run folder")
    path, ranks = metrics_files(run_dir, read_run_config(run_dir), protocol)
    if not path.is_file():
        require_finished(run_dir, "compare")  # evaluate refuses unfinished runs: say what does help
        raise ValueError(
            f"{run_dir}: no metrics for protocol {protocol!r} ({path.name}; "
            f"`temarec evaluate {run_dir} --protocol {protocol}` adds another protocol)"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not readable as JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object")
    if not ranks.is_file():
        raise ValueError(f"{run_dir}: has {path.name} but no {ranks.name} to pair users with")
    return doc


def _check_agree(runs: list[RunInfo]) -> None:
    first = runs[0]
    for r in runs[1:]:
        for f in MUST_AGREE:
            if f == "candidate_seed" and first.doc.get("protocol") == "full":
                continue  # full ranking draws no candidates
            a, b = first.doc.get(f), r.doc.get(f)
            if f in MAY_LACK and (a is None or b is None):
                continue  # written by a version that did not record it
            if a != b:
                raise ValueError(
                    f"runs are not comparable: field '{f}' is {first.doc.get(f)!r} in {first.dir} "
                    f"but {r.doc.get(f)!r} in {r.dir}"
                )


def _group_warnings(runs: list[RunInfo], name: str) -> list[str]:
    """What looks like a mistake in one group, without forbidding it: several models averaged together
    (two tag sources of one model are fine; sasrec and gru4rec in one group rarely are), and a model
    and seed given twice (a copied folder counts its seed twice in the mean)."""
    out = []
    models = sorted({str(r.doc.get("model")) for r in runs})
    if len(models) > 1:
        out.append(f"group {name} averages runs of several models ({', '.join(models)})")
    seen: dict[tuple, Path] = {}
    for r in runs:
        key = (r.doc.get("model"), r.doc.get("seed"))
        if key in seen:
            out.append(f"group {name}: {r.label} twice ({seen[key]} and {r.dir}); its seed weighs double")
        seen.setdefault(key, r.dir)
    return out


def verdict(t: dict, alpha: float = ALPHA) -> str:
    """`A` or `B`: the group that is significantly better by `significance.significant`; else `n.s.`."""
    if not significant(t, alpha):
        return "n.s."
    return "A" if t["diff"] > 0 else "B"


def compare_runs(
    a: list[Path],
    b: list[Path],
    protocols: list[str],
    metrics: tuple[str, ...] = METRICS,
    alpha: float = ALPHA,
) -> dict:
    """Paired tests of group A against group B, per protocol, domain and metric.

    Returns `{"a": [...], "b": [...], "alpha", "protocols": {protocol: {domain: {metric: test}}}}`; each
    test holds the two means, the difference, the t-test and Wilcoxon p-values and `verdict`.
    """
    from temarec.evaluation.protocol import parse_protocol

    protocols = list(dict.fromkeys(parse_protocol(p).name for p in protocols))  # 'Full' is full
    if not a or not b:
        raise ValueError("each group needs at least one run folder")
    if len({Path(p).resolve() for p in a} & {Path(p).resolve() for p in b}):
        raise ValueError("the same run folder is in both groups")
    for name, group in (("A", a), ("B", b)):
        if len({Path(p).resolve() for p in group}) < len(group):
            raise ValueError(f"group {name} names the same run folder twice")
    out: dict = {
        "a": [str(p) for p in a],
        "b": [str(p) for p in b],
        "alpha": alpha,
        "protocols": {},
        "warnings": [],
    }
    for protocol in protocols:
        ra = [RunInfo(Path(p), metrics_doc(Path(p), protocol)) for p in a]
        rb = [RunInfo(Path(p), metrics_doc(Path(p), protocol)) for p in b]
        _check_agree(ra + rb)
        for w in _group_warnings(ra, "A") + _group_warnings(rb, "B"):
            if w not in out["warnings"]:
                out["warnings"].append(w)
        domains = [d for d in ra[0].doc.get("test", {}) if d != "all"]
        if len(domains) != 2:
            raise ValueError(f"{ra[0].dir}: expected two domains in its test metrics, found {domains}")
        dirs_a, dirs_b = [r.dir for r in ra], [r.dir for r in rb]
        res = compare_models_by_metric(dirs_a, dirs_b, protocol, tuple(domains), metrics)
        out["protocols"][protocol] = {
            d: {m: res[m][d] | {"verdict": verdict(res[m][d], alpha)} for m in metrics}
            for d in (*domains, "all")
        }
        out.setdefault("runs", {})[protocol] = {
            "a": [r.label for r in ra],
            "b": [r.label for r in rb],
            "dataset": ra[0].doc.get("dataset"),
        }
    return out


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def markdown(result: dict, name_a: str = "A", name_b: str = "B") -> str:
    """One table per protocol: means, relative difference, both p-values and the verdict."""
    lines = [f"> warning: {w}" for w in result.get("warnings", [])]
    lines += [""] if lines else []
    for protocol, block in result["protocols"].items():
        runs = result["runs"][protocol]
        lines += [
            f"### {runs['dataset']}, {protocol} (test)",
            "",
            f"{name_a}: {', '.join(runs['a'])} ({_runs(len(runs['a']))}); "
            f"{name_b}: {', '.join(runs['b'])} ({_runs(len(runs['b']))}). Per-user metric averaged over each "
            f"group's runs, then paired t-test (t) and Wilcoxon signed-rank (W); verdict at "
            f"p < {result['alpha']} by both, leaning the same way.",
            "",
            f"| domain | metric | {name_a} | {name_b} | difference | t | W | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for d, row in block.items():
            for m, t in row.items():
                rel = f"{100 * t['diff'] / t['mean_b']:+.1f}%" if t["mean_b"] else "n/a"
                v = {"A": f"{name_a} better", "B": f"{name_b} better"}.get(t["verdict"], "n.s.")
                lines.append(
                    f"| {d} | {m} | {t['mean_a']:.4f} | {t['mean_b']:.4f} | {t['diff']:+.4f} ({rel}) | "
                    f"{format_p(t['t_p'])} | {format_p(t['wilcoxon_p'])} | {v} |"
                )
        lines.append("")
    return "\n".join(lines)
