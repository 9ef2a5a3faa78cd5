"""Mini-batch training and evaluation of a VQAModel on encoded splits."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .data import UNKNOWN_ANSWER, VQASplit


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 1
    threads: int | None = None
    device: str = "auto"


@dataclass
class EncodedSplit:
    """A split as tensors: ids (n, T) int64 padded with 0, answers (n,), image_rows (n,), images."""

    ids: torch.Tensor
    answers: torch.Tensor
    image_rows: torch.Tensor
    images: torch.Tensor
    kinds: list[str]


def pad_ids(rows: list[list[int]]) -> torch.Tensor:
    """(n, longest) int64, padded with 0; an empty question keeps one padding id."""
    width = max([len(r) for r in rows] + [1])
    out = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def encode_split(split: VQASplit, question_ids: list[list[int]]) -> EncodedSplit:
    """The split as tensors, given each question's embedding rows."""
    return EncodedSplit(ids=pad_ids(question_ids),
                        answers=torch.from_numpy(np.asarray(split.answers, np.int64)),
                        image_rows=torch.from_numpy(np.asarray(split.image_rows, np.int64)),
                        images=torch.from_numpy(np.ascontiguousarray(split.images)),
                        kinds=list(split.kinds) or [""] * len(split.questions))


def _batch(data: EncodedSplit, index: torch.Tensor, device: torch.device):
    ids = data.ids[index]
    ids = ids[:, :max(int((ids != 0).sum(1).max()), 1)]  # drop columns that are padding for the whole batch
    return ids.to(device), data.images[data.image_rows[index]].to(device), data.answers[index].to(device)


def train_model(model: torch.nn.Module, train: EncodedSplit, cfg: TrainConfig, device: torch.device,
                on_step: Callable[[int, dict], None] | None = None,
                on_epoch: Callable[[int, int], None] | None = None) -> dict:
    """Adam on cross-entropy with a cosine learning rate; returns {'final_loss', 'steps', 'train_s'}.

    Questions whose answer is outside the answer vocabulary are skipped.
    """
    keep = torch.nonzero(train.answers != UNKNOWN_ANSWER).squeeze(1)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)  # no weight decay: it would shrink unseen words' rows
    steps_per_epoch = max(1, math.ceil(len(keep) / cfg.batch_size))
    total = steps_per_epoch * cfg.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    order_rng = torch.Generator().manual_seed(cfg.seed)
    started, step, loss_value = time.perf_counter(), 0, float("nan")
    model.train()
    for epoch in range(cfg.epochs):
        order = keep[torch.randperm(len(keep), generator=order_rng)]
        for start in range(0, len(order), cfg.batch_size):
            if len(order) - start < 2 <= len(order):
                break  # batch norm cannot train on a lone leftover example
            ids, images, answers = _batch(train, order[start:start + cfg.batch_size], device)
            loss = F.cross_entropy(model(ids, images), answers)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            loss_value = float(loss.detach())
            if on_step is not None:
                on_step(step, {"train/loss": loss_value, "train/lr": schedule.get_last_lr()[0],
                               "train/epoch": epoch})
        if on_epoch is not None:
            on_epoch(epoch, step)
            model.train()
    return {"final_loss": loss_value, "steps": step, "train_s": time.perf_counter() - started}


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: EncodedSplit, device: torch.device, batch_size: int = 256) -> dict:
    """{'accuracy' (exact match), 'n', 'by_kind': {kind: accuracy}, 'predictions': (n,) answer ids};
    unknown answers count as wrong."""
    model.eval()
    correct = torch.zeros(len(data.answers), dtype=torch.bool)
    predictions = torch.zeros(len(data.answers), dtype=torch.long)
    for start in range(0, len(data.answers), batch_size):
        index = torch.arange(start, min(start + batch_size, len(data.answers)))
        ids, images, answers = _batch(data, index, device)
        predictions[index] = model(ids, images).argmax(dim=1).cpu()
        correct[index] = predictions[index] == answers.cpu()
    kinds = np.asarray(data.kinds)
    by_kind = {kind: float(correct[torch.from_numpy(kinds == kind)].float().mean())
               for kind in sorted(set(data.kinds)) if kind}
    return {"accuracy": float(correct.float().mean()) if len(correct) else float("nan"),
            "n": len(correct), "by_kind": by_kind, "predictions": predictions.tolist()}
