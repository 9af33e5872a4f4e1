"""Mini-batch training with early stopping on validation, and checkpoints that resume a killed run.

Checkpoints hold only tensors and plain values and are read with `torch.load(weights_only=True)`;
the best weights are also written as safetensors. Every file is written to a temp name then renamed,
so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from temarec.config import IGNORED_KEYS, TrainConfig
from temarec.data.ragged import Ragged
from temarec.evaluation.evaluator import EvalResult
from temarec.files import atomic_write
from temarec.models.base import RecModel
from temarec.training.memory import release_freed_memory

CHECKPOINT = "checkpoint.pt"


class ResumeError(RuntimeError):
    """A checkpoint in the run folder that this run cannot continue (other settings, tags or code)."""


BEST = "best.safetensors"


def save_weights(model: RecModel, path: Path) -> None:
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp))


def load_weights(model: RecModel, path: Path) -> None:
    model.load_state_dict(load_file(str(path)))


def _fingerprint(cfg: TrainConfig, model: RecModel, train: Ragged, max_len: int) -> str:
    h = hashlib.sha256()
    untouched = {k.removeprefix("train.") for k in IGNORED_KEYS if k.startswith("train.")}
    for part in (cfg.model_dump_json(exclude=untouched), type(model).__qualname__, repr(model)):
        h.update(part.encode())
    h.update(f"{max_len}".encode())
    h.update(np.ascontiguousarray(train.lengths).tobytes())
    h.update(np.ascontiguousarray(train.values).tobytes())
    return "auto-" + h.hexdigest()[:16]


class Trainer:
    """Trains `model` on `train` sequences; `validate(model)` returns an `EvalResult` used for selection.

    `cfg.seed` orders the batches; weight initialisation and dropout draw from torch's global generator,
    so seed that too (`torch.manual_seed`, before building the model) for a repeatable run, as `run` does.
    A checkpoint in `out_dir` is resumed only by the same training (`config_fingerprint`, or one made
    from `cfg`, the model and the data).
    """

    def __init__(
        self,
        model: RecModel,
        train: Ragged,
        validate: Callable[[RecModel], EvalResult],
        cfg: TrainConfig,
        out_dir: Path,
        max_len: int,
        config_fingerprint: str = "",
        progress: bool = True,
        tags_fingerprint: str | None = None,
    ):
        self.model, self.validate, self.cfg = model, validate, cfg
        self.out_dir = Path(out_dir)
        self.max_len = max_len
        # without one (a Trainer used directly), a checkpoint in out_dir may only be resumed by the same
        # training: same settings, same model (its repr names every layer's size and dropout), same data
        self.fingerprint = config_fingerprint or _fingerprint(cfg, model, train, max_len)
        self.tags_fingerprint = tags_fingerprint
        self.progress = progress
        rows = np.flatnonzero(train.lengths >= 2)  # a sequence of one item has no next-item target
        self.windows = torch.from_numpy(train.take(rows).padded(max_len + 1))
        self.optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.epoch = 0
        self.best_score = -math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.history: list[dict] = []

    # ---- checkpoints --------------------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        state = {
            "model": self.model.state_dict(),
            "optim": self.optim.state_dict(),
            "epoch": self.epoch,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "fingerprint": self.fingerprint,
            "tags_fingerprint": self.tags_fingerprint or "",
            "history": json.dumps(self.history),
        }
        atomic_write(self.out_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))

    def try_resume(self) -> bool:
        path = self.out_dir / CHECKPOINT
        if not (self.cfg.resume and path.is_file()):
            return False
        state = torch.load(path, weights_only=True)
        if state.get("fingerprint") != self.fingerprint:
            raise ResumeError(
                f"{path} was written by a run with another configuration or on other data (when the "
                "settings are the same, the dataset changed since); use a new --output folder, or "
                "--overwrite to train anew there"
            )
        stored_tags = state.get("tags_fingerprint") or None  # absent: written before tags were hashed
        if stored_tags is not None and stored_tags != self.tags_fingerprint:
            raise ResumeError(
                f"{path} was trained on another tag vocabulary ({stored_tags}, now "
                f"{self.tags_fingerprint or 'none'}: re-tagged since?); use a new --output folder, or "
                "--overwrite to train anew there"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optim.load_state_dict(state["optim"])
        except (RuntimeError, ValueError, KeyError) as err:
            # same configuration, other module layout: written by another temarec version
            raise ResumeError(
                f"{path} does not fit this model (written by another temarec version?); use a new "
                f"--output folder or remove the checkpoint. Details: {str(err).splitlines()[0]}"
            ) from err
        self.epoch = int(state["epoch"])
        self.best_score = float(state["best_score"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.history = json.loads(state["history"])
        return True

    # ---- loop ---------------------------------------------------------------------------------
    def _log(self, row: dict) -> None:
        self.history.append(row)
        with (self.out_dir / "epochs.jsonl").open("w", encoding="utf-8") as fh:
            for r in self.history:
                fh.write(json.dumps(r) + "\n")
        flat = [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in self.history]
        with (self.out_dir / "epochs.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(flat[0]))
            w.writeheader()
            w.writerows(flat)

    def train_epoch(self) -> tuple[float, float]:
        self.model.train()
        n = len(self.windows)
        order = torch.randperm(n, generator=self.generator)
        bs = self.cfg.batch_size
        total, steps = 0.0, 0
        t0 = time.perf_counter()
        bar = tqdm(
            range(0, n, bs),
            desc=f"epoch {self.epoch + 1}",
            unit="batch",
            leave=False,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        for start in bar:
            batch = self.windows[order[start : start + bs]]
            loss = self.model.loss(batch)
            if not (isinstance(loss, torch.Tensor) and loss.dim() == 0):
                raise TypeError(
                    f"{type(self.model).__name__}.loss must return a scalar tensor (the batch's mean), got "
                    + (
                        f"shape {tuple(loss.shape)}"
                        if isinstance(loss, torch.Tensor)
                        else type(loss).__name__
                    )
                )
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {self.epoch + 1}")
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.optim.step()
            total += loss.item()
            steps += 1
            if self.cfg.release_memory_every and steps % self.cfg.release_memory_every == 0:
                release_freed_memory()
            seqs_per_s = (start + len(batch)) / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{total / steps:.4f}", seq_s=f"{seqs_per_s:.0f}")
        return total / max(steps, 1), time.perf_counter() - t0

    def fit(self) -> dict:
        """Train until patience runs out or `epochs` is reached; the best weights end up in the model."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.try_resume()
        resumed_after = self.epoch if resumed else 0
        if resumed and self.progress:
            tqdm.write(f"resumed from {self.out_dir / CHECKPOINT} after epoch {self.epoch}")
        while self.epoch < self.cfg.epochs and self.bad_epochs < self.cfg.patience:
            loss, secs = self.train_epoch()
            self.epoch += 1
            t0 = time.perf_counter()
            res = self.validate(self.model)
            if self.cfg.release_memory_every:
                release_freed_memory()
            score = res.selection_score(self.cfg.select_metric)
            improved = score > self.best_score
            if improved:
                self.best_score, self.best_epoch, self.bad_epochs = score, self.epoch, 0
                save_weights(self.model, self.out_dir / BEST)
            else:
                self.bad_epochs += 1
            row = {
                "epoch": self.epoch,
                "loss": round(loss, 6),
                "train_seconds": round(secs, 3),
                "valid_seconds": round(time.perf_counter() - t0, 3),
                f"valid_{self.cfg.select_metric}": round(score, 6),
                "best": improved,
                "valid": res.metrics,
            }
            self._log(row)
            self._save_checkpoint()
            if self.progress:
                tqdm.write(
                    f"epoch {self.epoch:3d}  loss {loss:.4f}  {secs:.1f}s  valid {self.cfg.select_metric} "
                    f"{score:.4f}{'  *' if improved else ''}"
                )
        if (self.out_dir / BEST).is_file():
            load_weights(self.model, self.out_dir / BEST)
        epoch_secs = [r["train_seconds"] for r in self.history]
        return {
            "epochs": self.epoch,
            "best_epoch": self.best_epoch,
            "best_valid_score": self.best_score,
            "seconds_per_epoch": float(np.mean(epoch_secs)) if epoch_secs else 0.0,
            # what ended training: `patience` (validation stopped improving) or `epochs` (the limit)
            "stopped": "patience" if self.bad_epochs >= self.cfg.patience else "epochs",
            # a resumed run's wall_seconds counts only its last process; epochs.jsonl has every epoch's time
            "resumed_after_epoch": resumed_after,
        }
