"""End-to-end: `python -m w2v.train` as a user runs it, on tiny corpora and on the sample."""
import json
import os
from pathlib import Path

import numpy as np

import pytest
from gensim.models import KeyedVectors

from conftest import REPO, run_train

METRIC_KEYS = {"raw_words", "effective_words", "epochs", "vocab_size", "wall_s", "words_per_sec_raw",
               "words_per_sec_effective", "final_loss", "analogy_acc", "ws353_spearman", "simlex_spearman"}
TINY = ["model.dim=16", "vocab.min_count=2", "train.epochs=2", "export.projector_words=50"]


def tb_tags(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return set(acc.Tags()["scalars"])


@pytest.mark.slow
def test_full_run_writes_every_output(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    args = ["data=files", f"data.paths=[{tiny_corpus}]", f"cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={run_dir}", "export.text=true", "train.log_every=5", *TINY]
    result = run_train(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    kv = KeyedVectors.load_word2vec_format(str(run_dir / "vectors.bin"), binary=True)
    text_kv = KeyedVectors.load_word2vec_format(str(run_dir / "vectors.txt"), binary=False)
    assert kv.index_to_key == text_kv.index_to_key and kv.vector_size == 16
    assert kv.index_to_key[0] == "w0"  # most frequent first
    assert "[UNK]" not in kv.key_to_index
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["raw_words"] == 2 * metrics["corpus_words"]
    assert 0 < metrics["effective_words"] <= metrics["raw_words"]
    assert metrics["vocab_size"] == len(kv)
    assert (run_dir / "tokenizer.json").exists() and (run_dir / "config.resolved.yaml").exists()
    assert {"train/loss", "train/lr", "perf/words_per_sec", "eval/analogy_acc", "eval/ws353_spearman",
            "eval/simlex_spearman"} <= tb_tags(run_dir)
    assert (run_dir / "tb" / "word_vectors" / "tensors.tsv").exists() or \
        any(p.name == "projector_config.pbtxt" for p in (run_dir / "tb").rglob("*"))

    again = run_train([*args[:3], f"hydra.run.dir={tmp_path / 'run2'}", *TINY], cwd=tmp_path)
    assert again.returncode == 0
    assert "skipping tokenisation" in again.stdout + again.stderr


@pytest.mark.slow
@pytest.mark.parametrize("model, backend", [("cbow", "dense"), ("skipgram", "sparse"), ("skipgram", "onehot"),
                                            ("cbow", "onehot")])
def test_every_model_and_backend_trains(tmp_path, tiny_corpus, model, backend):
    run_dir = tmp_path / "run"
    result = run_train(["data=files", f"data.paths=[{tiny_corpus}]", f"cache_dir={tmp_path / 'cache'}",
                        f"hydra.run.dir={run_dir}", f"model={model}", f"backend={backend}", "evaluate=false",
                        *TINY], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["model"] == model and metrics["backend"] == backend
    assert 0 < metrics["final_loss"] < 4.16  # below the untrained loss, (1 + 5) * log 2


@pytest.mark.slow
def test_bad_input_is_one_line_and_leaves_no_vectors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n \t\n")
    for args, message in (([f"data.paths=[{tmp_path / 'nope.txt'}]"], "not found"),
                          ([f"data.paths=[{tmp_path}]"], "directory"),
                          ([f"data.paths=[{empty}]"], "empty")):
        run_dir = tmp_path / "run"
        result = run_train(["data=files", *args, f"cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run_dir}"],
                           cwd=tmp_path)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: ") and message in result.stderr
        assert not (run_dir / "vectors.bin").exists()
    result = run_train(["backend=bogus"], cwd=tmp_path)
    assert result.returncode != 0 and "valid: " in result.stderr and "dense" in result.stderr


def gensim_sentences(token_ids) -> list[list[str]]:
    """The very tokens w2v trained on, as gensim sentences (pieces of <= 10,000 words, gensim's limit)."""
    from w2v.vocab import id_to_word

    words = np.array(id_to_word(token_ids.tokenizer), dtype=object)
    bounds = token_ids.sentences
    sentences = []
    for s in range(len(bounds) - 1):
        line = words[np.asarray(token_ids.ids[bounds[s]:bounds[s + 1]])].tolist()
        sentences.extend(line[i:i + 10_000] for i in range(0, len(line), 10_000))
    return sentences


@pytest.mark.slow
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_quality_parity_with_gensim_on_the_sample(tmp_path, model):
    """The bundled sample with gensim's settings: no worse than gensim on the same tokens.

    Both start from gensim's +-1/dim initialisation (model.init_range=1.0) and decay alpha by
    words. Single runs on 600k words are noisy, and gensim with several workers is not even
    deterministic for a fixed seed, so each side's figures are means over seeds 1-3. Skip-gram
    trains 3 epochs (WS-353 about 0.13, per-seed sd about 0.015). CBOW trains 10: after 3 its
    WS-353 is near zero with sd 0.033 per seed, so a bound there tests noise. A single seed was
    not enough either: with seed 1, CBOW's SimLex sat 0.035 +- 0.015 below gensim's in 16 runs
    (gensim's seed 1 lands high: 0.145, its seeds 2-5 0.115-0.131), and the single-seed test
    failed its 0.06 margin twice in about twenty runs. The check is one-sided: analogy within 1 point, WS-353 and SimLex
    within 0.06 of gensim's means. The parity figures themselves are measured with more seeds
    by scripts/compare_gensim.py (docs/performance.md).
    """
    epochs = 3 if model == "skipgram" else 10
    seeds = (1, 2, 3)
    from gensim.models import Word2Vec
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from w2v.config import CONF_DIR, parse_config
    from w2v.corpus import open_corpus
    from w2v.evaluate import evaluate_vectors
    from w2v.token_ids import load_or_build
    from w2v.train import run

    def config(seed: int):
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            return parse_config(OmegaConf.to_container(compose(config_name="config", overrides=[
                f"model={model}", f"train.epochs={epochs}", f"train.seed={seed}", "model.init_range=1.0",
                f"cache_dir={REPO / 'data' / 'cache'}", "export.projector_words=0"]), resolve=True))

    cfg = config(1)
    token_ids = load_or_build(open_corpus(cfg.data, Path(cfg.cache_dir)), cfg.vocab, Path(cfg.cache_dir),
                              show_progress=False, log=lambda msg: None)
    sentences = gensim_sentences(token_ids)
    ours_runs, their_runs = [], []
    for seed in seeds:
        ours_runs.append(run(config(seed), tmp_path / f"run{seed}", show_progress=False))
        reference = Word2Vec(vector_size=100, window=5, negative=5, sample=1e-3, min_count=5,
                             sg=int(model == "skipgram"), workers=os.cpu_count(), seed=seed)
        reference.build_vocab(sentences)
        # total_words makes gensim decay alpha by words, as w2v does; its default counts sentences,
        # which on this sample (long articles first, short documents last) is a different schedule.
        reference.train(sentences, total_words=reference.corpus_total_words, epochs=epochs)
        their_runs.append(evaluate_vectors(reference.wv))
    keys = ("analogy_acc", "ws353_spearman", "simlex_spearman")
    ours = {k: sum(r[k] for r in ours_runs) / len(seeds) for k in keys}
    theirs = {k: sum(r[k] for r in their_runs) / len(seeds) for k in keys}
    assert ours["analogy_acc"] >= theirs["analogy_acc"] - 0.01, (ours, theirs)
    assert ours["ws353_spearman"] >= theirs["ws353_spearman"] - 0.06, (ours, theirs)
    assert ours["simlex_spearman"] >= theirs["simlex_spearman"] - 0.06, (ours, theirs)
