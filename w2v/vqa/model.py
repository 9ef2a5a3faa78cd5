"""The VQA-style classifier: question encoder, image encoder, FiLM fusion, MLP over answers.

    question ids (B, T) -> embedding -> mean pooling | GRU      -> q (B, H)
    image (B, S, S, 3) uint8 -> small CNN -> cells (B, (S/16)^2, C)
       or features (B, D) -> linear      -> cells (B, 1, C)
    cells + their x/y + q -> CellFusion (FiLM-gated cells; max, mean, position and
    attention pooling) -> MLP over the answer classes.
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


def patches(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, H/size, W/size, size*size*C): non-overlapping patches, channels last."""
    b, h, w, c = x.shape
    x = x.view(b, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // size, w // size, size * size * c)


class PatchLayer(nn.Module):
    """A 'conv' with kernel = stride = size, as a linear layer on patches; then batch norm and ReLU."""

    def __init__(self, size: int, in_channels: int, out_channels: int, input_scale: float = 1.0):
        super().__init__()
        self.size, self.input_scale = size, input_scale
        self.linear = nn.Linear(size * size * in_channels, out_channels)
        self.norm = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(patches(x, self.size).float() * self.input_scale)  # cut patches before the float copy
        return F.relu(self.norm(y.flatten(0, 2)).view_as(y))


class PixelEncoder(nn.Module):
    """(B, S, S, 3) uint8 -> (B, (S/16)^2, channels) cell features: two 4x4-patch layers.

    With S=64 each output cell covers one 16x16 cell of the scene grid, which holds
    at most one object, so a cell sees its object whole. Two cheap layers rather
    than a deep stack keep a CPU epoch short; the fusion does the question's work.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.layers = nn.Sequential(PatchLayer(4, 3, channels // 2, input_scale=1 / 255),
                                    PatchLayer(4, channels // 2, channels))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images).flatten(1, 2)


class FeatureEncoder(nn.Module):
    """(B, D) precomputed features -> (B, 1, channels): one cell."""

    def __init__(self, in_dim: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.relu(self.linear(features.float())).unsqueeze(1)


def with_positions(cells: torch.Tensor) -> torch.Tensor:
    """(B, N, C) cells of a square grid -> (B, N, C + 2), with each cell's x and y in [-1, 1]."""
    b, n, _ = cells.shape
    side = int(round(n ** 0.5))
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, side, device=cells.device),
                            torch.linspace(-1, 1, side, device=cells.device), indexing="ij")
    grid = torch.stack([xs, ys], dim=-1).view(1, n, 2).expand(b, n, 2)
    return torch.cat([cells, grid], dim=2)


def position_pooling(x: torch.Tensor) -> torch.Tensor:
    """(B, N, H) non-negative features of a square grid's cells -> (B, 2 * H).

    For each unit: the sum over cells of its activation times the cell's x, then
    the same with y, divided by N. Positive when the unit fires mostly on the right
    (or lower) half, negative on the left (upper) half, zero when it fires nowhere.
    """
    positions = with_positions(x.new_zeros(x.shape[0], x.shape[1], 0))  # (B, N, 2): x, y in [-1, 1]
    return torch.einsum("bnh,bnp->bph", x, positions).flatten(1) / x.shape[1]


class CellFusion(nn.Module):
    """Question + image cells -> (B, out_dim): question-gated cells, pooled three ways.

    Each cell's features and position pass through a layer whose units the question
    scales and shifts (FiLM), so one layer can test a conjunction ("small AND cone").
    Then max pooling answers "is there / what is it" and mean pooling "how many".
    Position pooling gives, for each unit, its activations summed with each cell's x (and
    y) as weight: a unit the question tunes to "red cube" reports where the red cube is, so "is A
    left of B" becomes a comparison of two such readings that the MLP learns linearly
    (with attention glimpses alone, relation questions stayed near chance on test).
    Besides, `glimpses` attention maps, each with its own question gating, each pick
    one object and report its features and position.
    """

    def __init__(self, channels: int, hidden: int, glimpses: int = 2):
        super().__init__()
        self.glimpses = glimpses
        self.cell_in = nn.Linear(channels + 2, hidden)
        self.norm = nn.BatchNorm1d(hidden, affine=False)  # FiLM supplies scale and shift
        self.film = nn.Linear(hidden, 2 * hidden * (1 + glimpses))
        self.cell_out = nn.Linear(hidden, hidden)
        self.attention = nn.Parameter(torch.randn(glimpses, hidden) / hidden ** 0.5)
        self.out_dim = 4 * hidden + glimpses * (channels + 2)

    def forward(self, cells: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        b, n, _ = cells.shape
        positioned = with_positions(cells)  # (B, N, C + 2)
        h = self.cell_in(positioned)
        h = self.norm(h.flatten(0, 1)).view_as(h)  # (B, N, hidden)
        gamma, beta = self.film(q).view(b, 2, 1 + self.glimpses, 1, -1).unbind(dim=1)
        gated = F.relu(h.unsqueeze(1) * (1 + gamma) + beta)  # (B, 1 + glimpses, N, hidden)
        x = F.relu(self.cell_out(gated[:, 0]))  # (B, N, hidden)
        weights = torch.einsum("bgnh,gh->bgn", gated[:, 1:], self.attention).softmax(dim=2)
        picked = torch.einsum("bgn,bnd->bgd", weights, positioned).flatten(1)
        return torch.cat([x.amax(dim=1), x.mean(dim=1), position_pooling(x), picked], dim=1)


class VQAModel(nn.Module):
    def __init__(self, embedding: QuestionEmbedding, cfg: ModelConfig, n_answers: int,
                 image_kind: str, image_shape: tuple[int, ...]):
        super().__init__()
        self.question = QuestionEncoder(embedding, cfg.encoder, cfg.hidden)
        if image_kind == "pixels":
            self.image = PixelEncoder(cfg.channels)
        else:
            self.image = FeatureEncoder(image_shape[-1], cfg.channels)
        self.fusion = CellFusion(cfg.channels, cfg.hidden)
        self.classifier = nn.Sequential(
            nn.Linear(self.fusion.out_dim + cfg.hidden, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, n_answers))

    def forward(self, ids: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """ids (B, T), images (B, S, S, 3) uint8 or (B, D) -> answer logits (B, n_answers)."""
        q = self.question(ids)
        return self.classifier(torch.cat([self.fusion(self.image(images), q), q], dim=1))
