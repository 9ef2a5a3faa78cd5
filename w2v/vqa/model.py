"""The VQA-style classifier: question encoder, image encoder, FiLM fusion, MLP over answers.

    question ids (B, T) -> embedding -> mean pooling | GRU      -> q (B, H)
    image (B, S, S, 3) uint8 -> small CNN -> map (B, C, S/16, S/16)
       or features (B, D) -> linear      -> map (B, C, 1, 1)
    q scales and shifts every channel of the map (FiLM), twice, with x/y coordinate
    channels so positions ("left of") stay visible; the map is flattened into an MLP.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .embeddings import QuestionEmbedding


@dataclass
class ModelConfig:
    encoder: str = "gru"  # gru | mean
    hidden: int = 128  # question vector size and MLP width
    channels: int = 64  # image feature-map channels


class QuestionEncoder(nn.Module):
    """(B, T) ids with 0 = padding -> (B, hidden)."""

    def __init__(self, embedding: QuestionEmbedding, kind: str, hidden: int):
        super().__init__()
        self.embedding, self.kind = embedding, kind
        if kind == "gru":
            self.rnn = nn.GRU(embedding.dim, hidden, batch_first=True)
        else:
            self.project = nn.Sequential(nn.Linear(embedding.dim, hidden), nn.ReLU())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        words = self.embedding(ids)
        lengths = (ids != 0).sum(dim=1).clamp(min=1)
        if self.kind == "gru":
            packed = pack_padded_sequence(words, lengths.cpu(), batch_first=True, enforce_sorted=False)
            return self.rnn(packed)[1][0]
        mask = (ids != 0).unsqueeze(-1).to(words.dtype)
        return self.project((words * mask).sum(dim=1) / lengths.unsqueeze(-1).to(words.dtype))


class PixelEncoder(nn.Module):
    """(B, S, S, 3) uint8 -> (B, channels, S/16, S/16): two 4x4-patch layers.

    With S=64 each output cell covers one 16x16 cell of the scene grid, which holds
    at most one object, so a cell sees its object whole. Two cheap layers rather
    than a deep stack keep a CPU epoch short; the FiLM blocks do the question's work.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, channels // 2, kernel_size=4, stride=4), nn.BatchNorm2d(channels // 2), nn.ReLU(),
            nn.Conv2d(channels // 2, channels, kernel_size=4, stride=4), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=1), nn.BatchNorm2d(channels), nn.ReLU(),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images.permute(0, 3, 1, 2).float() / 255.0)


class FeatureEncoder(nn.Module):
    """(B, D) precomputed features -> (B, channels, 1, 1)."""

    def __init__(self, in_dim: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.relu(self.linear(features.float()))[:, :, None, None]


def with_coordinates(x: torch.Tensor) -> torch.Tensor:
    """Append x and y position channels in [-1, 1] to a (B, C, H, W) map."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(b, 1, h, w)
    xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([x, xs, ys], dim=1)


class CellFusion(nn.Module):
    """Question + each cell of the image map -> (B, out_dim): question-gated cells, pooled three ways.

    Each cell's features and position pass through a layer whose units the question
    scales and shifts (FiLM), so one layer can test a conjunction ("small AND cone").
    Then max pooling answers "is there / what is it" and mean pooling "how many".
    Besides, `glimpses` attention maps, each with its own question gating, each pick
    one object and report its features and position: what "is A left of B" compares.
    """

    def __init__(self, channels: int, hidden: int, glimpses: int = 2):
        super().__init__()
        self.glimpses = glimpses
        self.cell_in = nn.Sequential(nn.Conv2d(channels + 2, hidden, kernel_size=1),
                                     nn.BatchNorm2d(hidden, affine=False))  # FiLM supplies scale and shift
        self.film = nn.Linear(hidden, 2 * hidden * (1 + glimpses))
        self.cell_out = nn.Conv2d(hidden, hidden, kernel_size=1)
        self.attention = nn.Conv2d(hidden * glimpses, glimpses, kernel_size=1, groups=glimpses)
        self.out_dim = 2 * hidden + glimpses * (channels + 2)

    def forward(self, image_map: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image_map.shape
        positioned = with_coordinates(image_map)  # (B, C + 2, H, W)
        cells = self.cell_in(positioned)  # (B, hidden, H, W)
        gamma, beta = self.film(q).view(b, 2, 1 + self.glimpses, -1, 1, 1).unbind(dim=1)
        gated = F.relu(cells.unsqueeze(1) * (1 + gamma) + beta)  # (B, 1 + glimpses, hidden, H, W)
        x = F.relu(self.cell_out(gated[:, 0]))
        weights = self.attention(gated[:, 1:].flatten(1, 2)).flatten(2).softmax(dim=2)  # (B, glimpses, H*W)
        picked = torch.einsum("bgc,bdc->bgd", weights, positioned.flatten(2)).flatten(1)
        return torch.cat([x.amax(dim=(2, 3)), x.mean(dim=(2, 3)), picked], dim=1)


class VQAModel(nn.Module):
    def __init__(self, embedding: QuestionEmbedding, cfg: ModelConfig, n_answers: int,
                 image_kind: str, image_shape: tuple[int, ...]):
        super().__init__()
        self.question = QuestionEncoder(embedding, cfg.encoder, cfg.hidden)
        if image_kind == "pixels":
            self.image = PixelEncoder(cfg.channels)
            map_side = image_shape[0] // 16
        else:
            self.image = FeatureEncoder(image_shape[-1], cfg.channels)
            map_side = 1
        self.fusion = CellFusion(cfg.channels, cfg.hidden)
        self.classifier = nn.Sequential(
            nn.Linear(self.fusion.out_dim + cfg.hidden, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, n_answers))

    def forward(self, ids: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """ids (B, T), images (B, S, S, 3) uint8 or (B, D) -> answer logits (B, n_answers)."""
        q = self.question(ids)
        return self.classifier(torch.cat([self.fusion(self.image(images), q), q], dim=1))
