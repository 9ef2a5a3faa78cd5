"""The run dir: refuse to mix a new run's outputs with an earlier run's.

Hydra creates the run dir and its `.hydra/` folder and log before our code runs, so
"non-empty" means: it holds something a w2v run writes (vectors, metrics,
tokenizer, checkpoint, TensorBoard events). A second run into such a dir stops
with one line, unless it continues the earlier run (train.resume) or is told to
replace it (overwrite=true), in which case the stale outputs are removed first so
that a failed rerun cannot leave the old vectors looking like new ones.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .checkpoint import CHECKPOINT_NAME, CheckpointPolicy, resume_path
from .config import W2VError

OUTPUT_NAMES = ("vectors.bin", "vectors.txt", "tokenizer.json", "metrics.json", CHECKPOINT_NAME, "tb")


def existing_outputs(run_dir: Path) -> list[str]:
    """Names of earlier runs' outputs present in run_dir."""
    return [name for name in OUTPUT_NAMES if (run_dir / name).exists()] if run_dir.is_dir() else []


def parse_overwrite(value) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    raise W2VError(f"overwrite must be true or false, got {value!r}")


def refuse_before_hydra(argv: list[str]) -> None:
    """The same refusal, from the command line alone, before Hydra writes its .hydra/ copy into the dir.

    Only an explicit hydra.run.dir can collide (the default is a new timestamped dir).
    """
    values = dict(arg.split("=", 1) for arg in argv if "=" in arg)
    run_dir = values.get("hydra.run.dir")
    resuming = values.get("train.resume", "false").strip().lower() not in ("false", "null", "none", "")
    overwrite = values.get("overwrite", "false").strip().lower() == "true"
    if run_dir and not resuming and not overwrite:
        prepare_run_dir(Path(run_dir), resuming=False, overwrite=False)


def remove_stale_temp_files(run_dir: Path) -> list[str]:
    """Remove the temp files (.NAME.*.tmp) of outputs whose writer was killed before its rename.

    Only one run writes into a run dir at a time, so any such file is an orphan.
    """
    removed = []
    for name in (*OUTPUT_NAMES, "config.resolved.yaml"):
        for tmp in run_dir.glob(f".{name}.*.tmp") if run_dir.is_dir() else []:
            tmp.unlink(missing_ok=True)
            removed.append(tmp.name)
    return removed


def prepare_run_dir(run_dir: Path, resuming: bool, overwrite: bool) -> None:
    """Refuse a run dir with outputs in it unless resuming or overwriting; clear it for overwrite."""
    found = existing_outputs(run_dir)
    if not found or resuming:
        remove_stale_temp_files(run_dir)
        return
    if not overwrite:
        raise W2VError(f"run dir {run_dir} already holds an earlier run's outputs ({', '.join(found)}); "
                       f"continue it with train.resume=true, replace it with overwrite=true, "
                       f"or choose another hydra.run.dir")
    for name in found:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    remove_stale_temp_files(run_dir)


@dataclass
class RunOptions:
    """How this run relates to earlier ones: resume from a checkpoint, overwrite, checkpoint policy."""

    resume: Path | None = None
    overwrite: bool = False
    checkpoint: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    # train.resume was asked for; with resume None, the run stopped before its first checkpoint
    # and starts again from the beginning in the same run dir.
    resume_requested: bool = False

    @property
    def resuming(self) -> bool:
        return self.resume is not None or self.resume_requested

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], run_dir: Path) -> "RunOptions":
        train_cfg = raw.get("train") or {}
        resume = resume_path(train_cfg.get("resume"), run_dir)
        asked = str(train_cfg.get("resume")).strip().lower() not in ("none", "false", "")
        return cls(resume=resume, overwrite=parse_overwrite(raw.get("overwrite", False)),
                   checkpoint=CheckpointPolicy.parse(train_cfg.get("checkpoint_every")), resume_requested=asked)
