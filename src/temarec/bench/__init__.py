"""Benchmark suite: a resumable grid of runs (datasets x variants x seeds x protocols) and its report.

`temarec bench CONFIG` loads a `BenchConfig` (`config.py`), runs the cells that are not finished yet, each in
its own process (`runner.py`), then writes `<output>/<dataset>.json` and `<output>/<dataset>.md`
(`report.py`). Packaged configs: `quick` (the demo world, a few minutes) and `paper` (the real datasets).
"""

from __future__ import annotations

from temarec.bench.config import BenchConfig, BenchConfigError, load_bench_config

__all__ = ["BenchConfig", "BenchConfigError", "load_bench_config"]
