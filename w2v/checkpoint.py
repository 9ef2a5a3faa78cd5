"""Checkpoints: where training is, saved atomically, loaded without running pickled code.

A checkpoint holds the backend's two tables, the optimiser state (if it has one), and
the loop state the trainer needs to continue exactly where it stopped: epoch,
position of each rank in its shard, the steps already taken in the current chunk,
the RNG states, and the running totals. Everything in it is tensors, numbers,
strings, lists and dicts, so `torch.load(..., weights_only=True)` reads it; a file
that needs more than that is refused rather than executed.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .atomic import atomic_path
from .config import RunConfig, is_count
from .errors import W2VError, first_line

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "w2v-checkpoint"
VERSION = 1
_MINUTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:m|min|mins|minutes)\s*$")


@dataclass
class CheckpointPolicy:
    """When to checkpoint besides on a stop signal: every N corpus words and/or every N seconds."""

    every_words: int | None = None
    every_seconds: float | None = None

    @classmethod
    def parse(cls, value: Any) -> "CheckpointPolicy":
        """train.checkpoint_every: null, a number of words (1000000) or minutes ("30min")."""
        if value is None or value is False:
            return cls()
        if is_count(value):
            return cls(every_words=value)
        if isinstance(value, str):
            if value.strip().isdigit() and int(value) >= 1:
                return cls(every_words=int(value))
            match = _MINUTES.match(value)
            if match and float(match.group(1)) > 0:
                return cls(every_seconds=float(match.group(1)) * 60)
        raise W2VError(f"train.checkpoint_every must be a number of words (e.g. 1000000) or of minutes "
                       f"(e.g. 30min), or null; got {value!r}")

    def due(self, words_done: float, words_at_last: float, seconds_since_last: float) -> bool:
        if self.every_words is not None and words_done - words_at_last >= self.every_words:
            return True
        return self.every_seconds is not None and seconds_since_last >= self.every_seconds


@dataclass
class Checkpointing:
    """What the training loop needs to checkpoint: when, how to save, and the stop flag.

    `save(loop_state)` is called on every rank with the same state; rank 0 writes it.
    `stop` is a signals.StopRequest (or anything with `.requested` and `.signal_name`).
    """

    policy: CheckpointPolicy
    save: Callable[[dict], None]
    stop: Any = None


def asks_to_resume(value: Any) -> bool:
    """train.resume asks to continue: true or a path (false, null and "" do not)."""
    return not (value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("", "false")))


def resume_path(value: Any, run_dir: Path) -> Path | None:
    """train.resume: false/null -> None; true -> run_dir/checkpoint.pt; a string -> that file.

    true without a checkpoint in an unfinished run dir (stopped, or killed, before its first
    checkpoint) -> None: the run starts from the beginning. A finished run (metrics.json, no
    checkpoint) has nothing to resume: refused.
    """
    if not asks_to_resume(value):
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        path = run_dir / CHECKPOINT_NAME
        if not path.is_file():
            if (run_dir / "metrics.json").is_file():
                raise W2VError(f"train.resume=true but there is no checkpoint at {path} "
                               f"(a finished run removes its checkpoint); nothing to resume")
            return None
        return path
    if isinstance(value, str):
        path = Path(value).expanduser()
        if not path.is_file():
            raise W2VError(f"train.resume: no checkpoint file at {value}")
        return path
    raise W2VError(f"train.resume must be true, false or a checkpoint path, got {value!r}")


def run_key(cfg: RunConfig, corpus_key: str, world_size: int) -> dict[str, Any]:
    """The settings a checkpoint is only valid for; resuming with any other value is refused."""
    return {
        "corpus": corpus_key, "model": cfg.model.name, "dim": cfg.model.dim, "window": cfg.model.window,
        "negative": cfg.model.negative, "loss": cfg.model.loss, "backend": cfg.backend.name, "min_count": cfg.vocab.min_count,
        **({"hs_node_subsampling": cfg.model.hs_node_subsampling} if cfg.model.loss == "hs" else {}),
        "max_size": cfg.vocab.max_size, "sample": cfg.vocab.sample, "epochs": cfg.train.epochs,
        "lr": cfg.train.lr, "min_lr": cfg.train.min_lr, "batch_size": cfg.train.batch_size,
        "seed": cfg.train.seed, "world_size": world_size,
        # log_every=auto shortens the chunks (w2v/trainer.py): a checkpoint written before it drew other chunks
        **({"log_every": "auto"} if cfg.train.log_every == "auto" else {}),
        # under torchrun the shards decide which words each rank still has to train
        **({"shards": cfg.train.shards, "sync_every": cfg.train.sync_every} if world_size > 1 else {}),
    }


# Keys added to the run key after checkpoints were written without them: the value those runs had.
LATER_KEYS = {"loss": "ns", "hs_node_subsampling": False}


def check_run_key(saved: Mapping[str, Any], current: Mapping[str, Any], path: Path) -> None:
    saved = {**LATER_KEYS, **saved}
    different = [f"{k}={saved.get(k)!r} (now {current[k]!r})" for k in current if saved.get(k) != current[k]]
    if different:
        raise W2VError(f"checkpoint {path} was written with other settings: {', '.join(different)}; "
                       f"resume with the same settings, or start afresh with overwrite=true")


def save_checkpoint(path: Path, backend, loop_state: dict, key: dict) -> None:
    """Write the checkpoint atomically: a crash while saving leaves the previous one intact."""
    optimizer = backend.optimizer
    payload = {
        "format": FORMAT, "version": VERSION, "saved_at": time.time(), "run_key": key, "loop": loop_state,
        # Through input_weights()/output_weights(), not state_dict(): offload keeps its
        # tables outside the module's parameters and buffers.
        "tables": {"input": backend.input_weights().detach().cpu(), "output": backend.output_weights().detach().cpu()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
    }
    save_atomically(path, payload)


def save_atomically(path: Path, payload: dict) -> None:
    """torch.save to a temp file renamed into place; a full disk raises OSError, and leaves no file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        try:
            torch.save(payload, f)
        except RuntimeError as exc:
            # A full disk: the write raises OSError inside torch.save, whose zip writer then fails to
            # finish the archive and raises RuntimeError("unexpected pos ...") over it. Report the
            # OSError. (Given a path instead of a file, torch writes in C++: no OSError at all.)
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, OSError):
                raise cause from None
            raise


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint with weights_only=True (no pickled code runs); one-line error if unusable."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file reaches any corner of the unpickler
        # (IndexError, KeyError, struct.error, UnicodeDecodeError, ... besides UnpicklingError);
        # whatever it is, the file is unusable and the user needs one line, not a traceback.
        raise W2VError(f"cannot read checkpoint {path}: {first_line(exc)[:200]}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise W2VError(f"{path} is not a w2v checkpoint")
    if payload.get("version") != VERSION:
        raise W2VError(f"checkpoint {path} has format version {payload.get('version')}, this code reads {VERSION}")
    tables = payload.get("tables")
    if not (isinstance(payload.get("run_key"), dict) and isinstance(payload.get("loop"), dict)
            and isinstance(tables, dict)
            and all(isinstance(tables.get(name), torch.Tensor) for name in ("input", "output"))):
        raise W2VError(f"checkpoint {path} is incomplete (needs run_key, loop and both tables); "
                       "start afresh with overwrite=true")
    return payload


def restore_backend(backend, payload: dict, lr: float) -> None:
    """Copy the saved tables and optimiser state into a freshly built backend, in place."""
    with torch.no_grad():
        for name, live in (("input", backend.input_weights()), ("output", backend.output_weights())):
            saved = payload["tables"][name]
            if tuple(saved.shape) != tuple(live.shape):
                raise W2VError(f"checkpoint {name} table is {tuple(saved.shape)}, the run needs {tuple(live.shape)}")
            live.copy_(saved)
        # A backend whose *_weights() hand out copies could not be restored this way: check.
        if not torch.equal(backend.input_weights().cpu(), payload["tables"]["input"]):
            raise W2VError(f"backend={backend.name} cannot be restored from a checkpoint")
    if payload.get("optimizer") is not None:
        backend.restore_optimizer(payload["optimizer"], lr)
