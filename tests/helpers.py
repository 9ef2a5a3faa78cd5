"""Helpers the tests share: a deterministic corpus and a w2v.train subprocess (fixtures live in conftest.py)."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def zipf_text(n_words: int, vocab: int = 300, seed: int = 0, line_words: int = 20) -> str:
    """Deterministic Zipf-ish text with topic structure, one sentence per line."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    weights = [1.0 / (i + 1) for i in range(vocab)]
    lines, line = [], []
    for _ in range(n_words):
        line.append(rng.choices(words, weights)[0])
        if len(line) == line_words:
            lines.append(" ".join(line))
            line = []
    if line:
        lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


def run_train(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python -m w2v.train ARGS` in a subprocess, offline, on the CPU."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-m", "w2v.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


# The smallest run that still exercises every stage: a few dimensions, one epoch, one thread, no evaluation.
TINY_RUN = ["model.dim=8", "vocab.min_count=2", "train.epochs=1", "evaluate=false", "export.projector_words=0",
            "train.threads=1"]


def compose_config(*overrides: str, config_name: str = "config") -> dict:
    """The packaged Hydra config (w2v/conf/) composed with these overrides, as a plain dict."""
    from hydra import compose, initialize_config_dir  # spawned ranks import this module: hydra only when used
    from omegaconf import OmegaConf

    from w2v.config import CONF_DIR

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return OmegaConf.to_container(compose(config_name=config_name, overrides=list(overrides)), resolve=True)


def compose_run_config(*overrides: str):
    """The validated RunConfig of the default config with these overrides."""
    from w2v.config import parse_config

    return parse_config(compose_config(*overrides))


# Characters where a hand-written normaliser or splitter would most likely differ from the
# tokenizer's: capital sigma (str.lower() would give the final form), ligatures, fullwidth
# letters, dotted capital I, combining marks (Rust's \w has them, Python's does not),
# Devanagari vowel signs, connector punctuation, digits outside ASCII, every kind of space and
# invisible character, U+FFFD, private use and unassigned code points, astral letters and emoji.
TRICKY = list("abc XYZ,.'-!?\t\r09_") + list(
    "ΣΑΣ ς éé ﬁ ½ ² ① Ⅻ ａｂ İ ß ǅ \u00a0\u2003\u200b\u2028\u2029\u0085\ufeff\ufffd\x00\x1f\x7f"
    "\u0301\u0915\u093f\u203f‿ 日本語 한국 ٣ 𝟙 \U0001F600 \ue000 \U000e0001 \u0378 \U0001d400 ")


def tokenizer_words(line: str, pre_tokenizer: str) -> list[str]:
    """The words the HF tokenizer (w2v/vocab.py) makes of one line."""
    from w2v.vocab import new_tokenizer

    tokenizer = new_tokenizer(pre_tokenizer)
    normalised = tokenizer.normalizer.normalize_str(line)
    return [piece for piece, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalised)]


# Inputs for the hand-written training steps (backend=fused: C, torch ops, Triton), compared with autograd's.

def tables(vocab: int = 30, dim: int = 8, seed: int = 0):
    """word2vec's input init and a random (non-zero) output table, so every gradient term is live."""
    import torch

    from w2v.backends import init_tables

    inp, _ = init_tables(vocab, dim, seed)
    return inp * 20, torch.randn(vocab, dim, generator=torch.Generator().manual_seed(seed)) * 0.3


def distinct_negatives(n: int, k: int, vocab: int, seed: int):
    """(n, k) negatives with no repeat inside a row (a repeat would see its own first update in C)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(vocab, generator=g)[:k] for _ in range(n)])


def skipgram_batch(n: int = 12, vocab: int = 30, seed: int = 1):
    import torch

    from w2v.objective import Batch

    g = torch.Generator().manual_seed(seed)
    contexts = torch.randint(1, vocab, (n,), generator=g)
    negatives = distinct_negatives(n, 5, vocab, seed)
    negatives[0, 2] = contexts[0]  # a negative equal to the target must be skipped
    return Batch(centres=torch.randint(1, 6, (n,), generator=g), contexts=contexts, negatives=negatives)


def cbow_batch(n: int = 12, vocab: int = 30, seed: int = 2):
    import torch

    from w2v.objective import Batch

    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, 6, generator=g) < 0.7
    mask[:, 0] = True
    centres = torch.randint(1, vocab, (n,), generator=g)
    negatives = distinct_negatives(n, 5, vocab, seed)
    negatives[1, 0] = centres[1]
    return Batch(centres=centres, contexts=torch.randint(1, 8, (n, 6), generator=g), negatives=negatives, mask=mask)


def single(batch, i: int):
    """Example i of a batch, as a batch of one."""
    from w2v.objective import Batch

    return Batch(centres=batch.centres[i:i + 1], contexts=batch.contexts[i:i + 1],
                 negatives=batch.negatives[i:i + 1], mask=None if batch.mask is None else batch.mask[i:i + 1])


def zipf_chunk(n: int = 3000, vocab: int = 50, window: int = 5, seed: int = 0):
    """One chunk of Zipf-distributed ids in 41 sentences, as the training loop draws it."""
    import numpy as np

    from w2v.batches import epoch_chunks

    rng = np.random.default_rng(seed)
    ids = rng.zipf(1.3, n) % (vocab - 1) + 1
    sentences = np.concatenate([[0], np.sort(rng.choice(np.arange(1, n), 40, replace=False)), [n]])
    return next(epoch_chunks(ids, sentences, np.ones(vocab), window, rng, chunk_tokens=n))


def hs_counts(vocab: int = 30):
    """Zipf-like counts over a small vocabulary: a Huffman tree with paths of several lengths."""
    import numpy as np

    return (1000 / np.arange(1, vocab + 1)).astype(np.int64) + 1


def hs_example(model: str, make, vocab: int = 30, n: int = 12, node_sample: float = 0.0):
    """(hierarchical-softmax objective over hs_counts, inner nodes subsampled at node_sample, a batch of
    `make` without negatives)."""
    import torch

    from w2v.objective import make_objective

    batch = make(n=n, vocab=vocab)
    batch.negatives = torch.zeros((batch.size, 0), dtype=torch.int64)
    return make_objective(model, 3, 5, loss="hs", counts=hs_counts(vocab), node_sample=node_sample), batch


def saturating(objective, inp, out, batch, scale: float):
    """Scale the input table until some path node's |score| passes HS_MAX_SCORE and most do not."""
    import torch

    from w2v.objective import HS_MAX_SCORE

    targets, _, valid = objective.output_targets(objective.predicted(batch.centres, batch.contexts), batch.negatives)
    for factor in (1, 1.5, 2, 3, 4):
        scaled = inp * scale * factor
        hidden = scaled[batch.centres] if not objective.predicts_centre else \
            (scaled[batch.contexts] * batch.mask.unsqueeze(2)).sum(1) / batch.mask.sum(1, keepdim=True)
        scores = torch.einsum("bd,btd->bt", hidden, out[targets])[valid.bool()].abs()
        if 0 < int((scores >= HS_MAX_SCORE).sum()) < len(scores) // 2:
            return scaled
    raise AssertionError(f"no scale saturates some nodes but not most: {scores}")
