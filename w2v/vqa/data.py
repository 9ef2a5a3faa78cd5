"""The in-memory form every VQA source is turned into (synthetic scenes or VQA v2 files)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNKNOWN_ANSWER = -1  # an answer outside the answer vocabulary: always scored wrong


@dataclass
class VQASplit:
    """Questions of one split and the images they ask about.

    questions: n strings; answers: (n,) int64 class ids (UNKNOWN_ANSWER allowed in
    evaluation splits); image_rows: (n,) int64 row of `images` each question asks about;
    images: (n_images, H, W, 3) uint8 pixels or (n_images, D) float32 features;
    kinds: the question type of each question ("" when the source has none);
    human_answers: each question's annotators' answers (VQA v2), for the official soft accuracy.
    """

    questions: list[str]
    answers: np.ndarray
    image_rows: np.ndarray
    images: np.ndarray
    kinds: list[str] = field(default_factory=list)
    human_answers: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.questions)


@dataclass
class VQADataset:
    splits: dict[str, VQASplit]  # must hold "train"; every other split is evaluated
    answer_names: list[str]
    image_kind: str  # "pixels" (CNN) or "features" (linear layer)
    source: str = ""  # one line saying where the data came from, for metrics.json

    @property
    def eval_splits(self) -> list[str]:
        return [name for name in self.splits if name != "train"]
