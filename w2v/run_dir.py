"""The run dir: refuse to mix a new run's outputs with an earlier run's.

Hydra creates the run dir and its `.hydra/` folder and log before our code runs, so
"non-empty" means: it holds something a run of the same command writes (w2v.train: vectors,
metrics, tokenizer, checkpoint, TensorBoard events; w2v.vqa names its own). A second run
into such a dir stops with one line, unless it continues the earlier run (train.resume) or
is told to replace it (overwrite=true), in which case the stale outputs are removed first so
that a failed rerun cannot leave the old vectors looking like new ones.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .checkpoint import CHECKPOINT_NAME, CheckpointPolicy, asks_to_resume, resume_path
from .cli import command_line_values
from .continued import TABLES_NAME
from .errors import W2VError

TRAIN_OUTPUTS = ("vectors.bin", "vectors.txt", "tokenizer.json", TABLES_NAME, "metrics.json", CHECKPOINT_NAME, "tb")


def existing_outputs(run_dir: Path, outputs: tuple[str, ...] = TRAIN_OUTPUTS) -> list[str]:
    """Names of earlier runs' outputs present in run_dir."""
    return [name for name in outputs if (run_dir / name).exists()] if run_dir.is_dir() else []


def parse_overwrite(value: Any) -> bool:
    """overwrite: true or false (null: false)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise W2VError(f"overwrite must be true or false, got {value!r}")


def refuse_before_hydra(argv: list[str], outputs: tuple[str, ...] = TRAIN_OUTPUTS, resumable: bool = True) -> None:
    """The same refusal, from the command line alone, before Hydra writes its .hydra/ copy into the dir.

    Only an explicit hydra.run.dir can collide (the default is a new timestamped dir). The values
    are read as Hydra will compose them and parsed by the same rules as the composed config.
    """
    values = command_line_values(argv, ("hydra.run.dir", "train.resume", "overwrite"))
    run_dir = values.get("hydra.run.dir")
    if not isinstance(run_dir, str) or not run_dir or "${" in run_dir:  # an interpolation: Hydra resolves it
        return
    resuming = resumable and asks_to_resume(values.get("train.resume"))
    overwrite = parse_overwrite(values.get("overwrite"))
    found = check_run_dir(Path(run_dir), outputs, resuming, overwrite, resumable)
    if found and overwrite and not resuming:
        # Hydra appends its job log (train.log) to an existing one: the replaced run's lines would stay on top
        # of the new run's. Removed before Hydra opens it; a resumed run keeps appending to its own.
        for log in Path(run_dir).glob("*.log"):
            log.unlink(missing_ok=True)


def remove_stale_temp_files(run_dir: Path, outputs: tuple[str, ...] = TRAIN_OUTPUTS) -> list[str]:
    """Remove the temp files (.NAME.*.tmp) of outputs whose writer was killed before its rename.

    Only one run writes into a run dir at a time, so any such file is an orphan.
    """
    removed = []
    for name in (*outputs, "config.resolved.yaml"):
        for tmp in run_dir.glob(f".{name}.*.tmp") if run_dir.is_dir() else []:
            tmp.unlink(missing_ok=True)
            removed.append(tmp.name)
    return removed


def check_run_dir(run_dir: Path, outputs: tuple[str, ...], resuming: bool, overwrite: bool,
                  resumable: bool = True) -> list[str]:
    """The earlier outputs in run_dir; refused unless this run resumes or overwrites them."""
    found = existing_outputs(run_dir, outputs)
    if found and not resuming and not overwrite:
        ways = "continue it with train.resume=true, replace it with overwrite=true, " if resumable else \
            "replace it with overwrite=true "
        raise W2VError(f"run dir {run_dir} already holds an earlier run's outputs ({', '.join(found)}); "
                       f"{ways}or choose another hydra.run.dir")
    return found


def prepare_run_dir(run_dir: Path, resuming: bool, overwrite: bool, outputs: tuple[str, ...] = TRAIN_OUTPUTS,
                    resumable: bool = True) -> None:
    """Refuse a run dir with outputs in it unless resuming or overwriting; clear it for overwrite."""
    found = check_run_dir(run_dir, outputs, resuming, overwrite, resumable)
    if not resuming:
        for name in found:  # overwrite: a failed rerun must not leave the old outputs looking new
            path = run_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    remove_stale_temp_files(run_dir, outputs)


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
        """train.resume, overwrite and train.checkpoint_every of a composed config, parsed and checked."""
        train_cfg = raw.get("train") or {}
        return cls(resume=resume_path(train_cfg.get("resume"), run_dir),
                   overwrite=parse_overwrite(raw.get("overwrite", False)),
                   checkpoint=CheckpointPolicy.parse(train_cfg.get("checkpoint_every")),
                   resume_requested=asks_to_resume(train_cfg.get("resume")))
