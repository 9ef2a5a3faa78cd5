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
from pathlib import Path

from .checkpoint import CHECKPOINT_NAME
from .config import W2VError

OUTPUT_NAMES = ("vectors.bin", "vectors.txt", "tokenizer.json", "metrics.json", CHECKPOINT_NAME, "tb")


def existing_outputs(run_dir: Path) -> list[str]:
    """Names of earlier runs' outputs present in run_dir."""
    return [name for name in OUTPUT_NAMES if (run_dir / name).exists()]


def parse_overwrite(value) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    raise W2VError(f"overwrite must be true or false, got {value!r}")


def prepare_run_dir(run_dir: Path, resuming: bool, overwrite: bool) -> None:
    """Refuse a run dir with outputs in it unless resuming or overwriting; clear it for overwrite."""
    found = existing_outputs(run_dir)
    if not found or resuming:
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
