"""Quality checks that a broken trainer fails, and that the defaults are at or above gensim's.

Two checks on the bundled sample, each on the mean over seeds 1-3 of each figure (analogy,
WS-353, SimLex-999), measured in standard errors of the difference between a 3-seed mean and
gensim's stored 6-seed mean, sd(1/3 + 1/6)^0.5, with the per-seed sd pooled over gensim's and w2v's seeds:
- `quality_failures`, the algorithm check: at gensim's settings (train.lr=0.025, gensim's alpha),
  every figure must lie within 3.5 standard errors of gensim's mean on the same tokens;
- `below_gensim`, the defaults check: with the project defaults (train.lr=0.03), no figure may lie
  more than 3.5 standard errors below gensim's mean.
gensim's figures are stored below rather than rerun here (gensim 4.4, 2 workers, total_words given
so alpha decays by words, seeds 1-6; docs/performance.md, "Quality vs gensim").

The band is two-sided on purpose. On the sample at 3 epochs skip-gram is far from converged, so
three of the four broken trainers below score *higher* than gensim (more pairs, or bigger steps),
and a floor alone would pass them. What the check asserts is that, at gensim's settings, w2v
reproduces gensim's figures within seed noise. A genuine improvement in the kernel would show as a
failure here too: measure it (scripts/compare_gensim.py) and update the stored figures. The
defaults' larger learning rate is such an improvement (docs/performance.md, "Quality vs gensim"),
which is why the algorithm check runs at lr 0.025 and the defaults get the one-sided check.
Every run uses one thread (`train.threads=1`), so it is repeatable: with two Hogwild threads the
"subsampling off" mutant's analogy mean once fell inside the band on a loaded machine.
The default trainer passes; four mutants, each with one piece of word2vec's recipe removed, fail:
learning-rate decay off, negatives reused, subsampling off, window not reduced. They run the
production code with one thing changed (a patched C kernel, or one patched name in w2v.trainer).
"""
from __future__ import annotations

import ctypes
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO, compose_run_config

METRICS = ("analogy_acc", "ws353_spearman", "simlex_spearman")
SEEDS = (1, 2, 3)
GENSIM_SEEDS = 6
EPOCHS = {"skipgram": 3, "cbow": 10}  # CBOW: after 3 epochs of the sample its figures are noise
STANDARD_ERRORS = 3.5
# gensim's mean over seeds 1-6, and the per-seed sd pooled over those and w2v's (defaults, seeds
# 1-6), on the sample: EPOCHS[model] epochs, dim 100, window 5, negative 5, sample 1e-3, min_count 5.
GENSIM_SAMPLE = {
    "skipgram": {"analogy_acc": (0.0103, 0.0009), "ws353_spearman": (0.1375, 0.0175),
                 "simlex_spearman": (0.1037, 0.0141)},
    "cbow": {"analogy_acc": (0.0178, 0.0014), "ws353_spearman": (0.2699, 0.0180),
             "simlex_spearman": (0.1245, 0.0180)},
}


def band(model: str) -> dict[str, tuple[float, float]]:
    """{figure: (lowest, highest)} 3-seed mean that passes."""
    scale = STANDARD_ERRORS * math.sqrt(1 / len(SEEDS) + 1 / GENSIM_SEEDS)
    return {k: (mean - scale * sd, mean + scale * sd) for k, (mean, sd) in GENSIM_SAMPLE[model].items()}


def below_gensim(model: str, runs: list[dict]) -> dict[str, tuple[float, float]]:
    """{figure: (3-seed mean, lowest mean that passes)} for each figure below gensim's band; empty when none is."""
    limits = band(model)
    means = {k: float(np.mean([r[k] for r in runs])) for k in METRICS}
    return {k: (means[k], limits[k][0]) for k in METRICS if means[k] < limits[k][0]}


def quality_failures(model: str, runs: list[dict]) -> dict[str, tuple[float, tuple[float, float]]]:
    """{figure: (3-seed mean, (low, high))} for each figure outside its band; empty when the runs pass."""
    limits = band(model)
    means = {k: float(np.mean([r[k] for r in runs])) for k in METRICS}
    return {k: (means[k], limits[k]) for k in METRICS if not limits[k][0] <= means[k] <= limits[k][1]}


GENSIM_SETTINGS = ("train.lr=0.025",)  # gensim's alpha; everything else is already gensim's


def train_sample(model: str, seed: int, run_dir: Path, overrides: tuple[str, ...]) -> dict:
    """Project defaults on the sample (the epochs set, and `overrides`), in this process; returns metrics.json's dict."""
    from w2v.train import run

    cfg = compose_run_config(f"model={model}", f"train.epochs={EPOCHS[model]}", f"train.seed={seed}", "train.device=cpu",
                             "train.threads=1", f"cache_dir={REPO / 'data' / 'cache'}", "export.projector_words=0",
                             *overrides)
    return run(cfg, run_dir, show_progress=False)


def sample_runs(model: str, tmp_path: Path, overrides: tuple[str, ...] = GENSIM_SETTINGS) -> list[dict]:
    return [train_sample(model, seed, tmp_path / f"{model}-{seed}", overrides) for seed in SEEDS]


# -- mutants ------------------------------------------------------------------------------------

def mutated_kernel(tmp_path: Path, old: str, new: str):
    """sgns.c with `old` (which must occur once) replaced by `new`, compiled and loaded."""
    from w2v import kernels

    source = kernels.SOURCE.read_text()
    assert source.count(old) == 1, f"the mutation no longer applies to sgns.c: {old!r}"
    c_file, library = tmp_path / "mutant.c", tmp_path / "mutant.so"
    c_file.write_text(source.replace(old, new))
    subprocess.run([kernels._compiler(), *kernels.OPT_FLAGS, *kernels.LINK_FLAGS, str(c_file), "-o", str(library),
                    "-lm"], check=True, capture_output=True)
    return kernels.SgnsKernel(ctypes.CDLL(str(library)))


def no_lr_decay(monkeypatch, tmp_path):
    import w2v.trainer

    assert hasattr(w2v.trainer, "learning_rate")
    monkeypatch.setattr(w2v.trainer, "learning_rate", lambda start, end, progress: start)


def negatives_reused(monkeypatch, tmp_path):
    """Each thread draws one set of negatives per chunk and uses it for every example in it."""
    import w2v.backends.fused

    kernel = mutated_kernel(tmp_path, "    ahead->next ^= 1;\n    draw_ahead(ahead, noise, state, out, dim, negative);\n",
                            "")
    monkeypatch.setattr(w2v.backends.fused, "load_sgns", lambda: kernel)


def no_subsampling(monkeypatch, tmp_path):
    import w2v.trainer

    keep_probability = w2v.trainer.keep_probability
    monkeypatch.setattr(w2v.trainer, "keep_probability", lambda counts, sample: keep_probability(counts, 0.0))


def window_not_reduced(monkeypatch, tmp_path):
    import w2v.trainer

    epoch_chunks = w2v.trainer.epoch_chunks

    def full_windows(ids, sentences, keep, window, rng, **kwargs):
        for chunk in epoch_chunks(ids, sentences, keep, window, rng, **kwargs):
            chunk.window[:] = window
            yield chunk

    monkeypatch.setattr(w2v.trainer, "epoch_chunks", full_windows)


MUTANTS = {"lr decay off": no_lr_decay, "negatives reused": negatives_reused, "subsampling off": no_subsampling,
           "window not reduced": window_not_reduced}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_at_gensims_settings_the_trainer_reproduces_gensims_figures(tmp_path, model):
    runs = sample_runs(model, tmp_path)
    assert not quality_failures(model, runs), (quality_failures(model, runs), [{k: r[k] for k in METRICS} for r in runs])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_project_defaults_are_not_below_gensim(tmp_path, model):
    runs = sample_runs(model, tmp_path, overrides=())
    assert not below_gensim(model, runs), (below_gensim(model, runs), [{k: r[k] for k in METRICS} for r in runs])


@pytest.mark.slow
@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_a_broken_trainer_fails_the_quality_check(tmp_path, monkeypatch, mutant):
    MUTANTS[mutant](monkeypatch, tmp_path)
    runs = sample_runs("skipgram", tmp_path)
    assert quality_failures("skipgram", runs), ([{k: r[k] for k in METRICS} for r in runs], band("skipgram"))


@pytest.mark.slow
def test_the_defaults_check_fails_a_broken_trainer(tmp_path, monkeypatch):
    # The one-sided check must not be vacuous: reusing the negatives ruins the vectors at any lr.
    negatives_reused(monkeypatch, tmp_path)
    runs = sample_runs("skipgram", tmp_path, overrides=())
    assert below_gensim("skipgram", runs), [{k: r[k] for k in METRICS} for r in runs]
