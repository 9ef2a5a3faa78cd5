"""End-to-end: `python -m w2v.train` as a user runs it, on tiny corpora and on the sample."""
import json

import numpy as np
import pytest
from gensim.models import KeyedVectors

from tests.helpers import run_train

METRIC_KEYS = {"raw_words", "effective_words", "epochs", "vocab_size", "wall_s", "words_per_sec_raw",
               "words_per_sec_effective", "final_loss", "analogy_acc", "ws353_spearman", "simlex_spearman"}
TINY = ["model.dim=16", "vocab.min_count=2", "train.epochs=2", "export.projector_words=50"]


def event_accumulator(run_dir):
    """The run's TensorBoard scalars, every point kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def scalar_steps(run_dir, tag):
    return [event.step for event in event_accumulator(run_dir).Scalars(tag)]


def scalar_tags(run_dir):
    return event_accumulator(run_dir).Tags()["scalars"]


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
    assert "kernel: auto" in (run_dir / "config.resolved.yaml").read_text()  # which fused path trained
    assert {"train/loss", "train/lr", "perf/words_per_sec", "eval/analogy_acc", "eval/ws353_spearman",
            "eval/simlex_spearman"} <= set(scalar_tags(run_dir))
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


def topic_text(path, topics: int = 6, words: int = 10, lines: int = 400, seed: int = 0):
    """Lines of 15 words, each line from one topic's words: context that a model can learn."""
    rng = np.random.default_rng(seed)
    text = "\n".join(" ".join(f"t{t}w{w}" for w in rng.integers(0, words, 15))
                     for t in rng.integers(0, topics, lines))
    path.write_text(text + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("model, backend", [("skipgram", "fused"), ("cbow", "fused"), ("cbow", "sparse")])
def test_hierarchical_softmax_trains_and_exports(tmp_path, model, backend):
    """model.loss=hs end to end: the loss falls as it trains, and the vectors are exported as with ns.

    The batched backends sum a batch's updates, and every hs example passes the root and the nodes near
    it: at 1,024 CBOW windows a batch over this 60-word tree the summed step on those rows diverged at
    lr 0.03 (loss 4.1 -> 20), so the batch is small here, as the README advises for hs on those backends."""
    corpus = topic_text(tmp_path / "topics.txt")
    run_dir = tmp_path / "run"
    result = run_train(["data=files", f"data.paths=[{corpus}]", f"cache_dir={tmp_path / 'cache'}",
                        f"hydra.run.dir={run_dir}", f"model={model}", f"backend={backend}", "model.loss=hs",
                        "evaluate=false", "train.epochs=3", "model.dim=16", "vocab.min_count=2",
                        "export.projector_words=0", "train.threads=1", "train.log_every=1500", "vocab.sample=0",
                        "train.batch_size=64"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["loss"] == "hs" and metrics["model"] == model
    curve = [event.value for event in event_accumulator(run_dir).Scalars("train/loss")]
    assert len(curve) >= 3 and curve[-1] < 0.9 * curve[0], curve
    kv = KeyedVectors.load_word2vec_format(str(run_dir / "vectors.bin"), binary=True)
    assert kv.vector_size == 16 and len(kv) == metrics["vocab_size"] == 60
    assert np.isfinite(kv.vectors).all()


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


# Quality against gensim on the sample (bounds from seed statistics, and the broken trainers that
# must fail them) lives in tests/test_quality.py.


def test_one_epoch_draws_a_curve_and_evaluation_leaves_training_alone(tmp_path, tiny_corpus):
    """Defaults: log_every=auto gives a one-epoch run at least 50 loss points; eval_every=epoch evaluates at
    every epoch's end but the last (the final evaluation's), and the vectors are those of a run without it."""
    from tests.helpers import compose_run_config
    from w2v.train import run

    common = ["data=files", f"data.paths=[{tiny_corpus}]", f"cache_dir={tmp_path / 'cache'}", "model.dim=16",
              "vocab.min_count=2", "train.threads=1", "train.device=cpu", "export.projector_words=0"]
    metrics = run(compose_run_config(*common, "train.epochs=1"), tmp_path / "one", show_progress=False)
    assert len(scalar_steps(tmp_path / "one", "train/loss")) >= 50
    assert len(scalar_steps(tmp_path / "one", "eval/analogy_acc")) == 1  # the final evaluation only
    run(compose_run_config(*common, "train.epochs=3"), tmp_path / "on", show_progress=False)
    run(compose_run_config(*common, "train.epochs=3", "train.eval_every=0"), tmp_path / "off", show_progress=False)
    steps = scalar_steps(tmp_path / "on", "eval/simlex_spearman")
    per_epoch = metrics["steps"]
    assert steps == [per_epoch, 2 * per_epoch, 3 * per_epoch]  # two while training, then the final one
    assert len(scalar_steps(tmp_path / "off", "eval/simlex_spearman")) == 1
    assert (tmp_path / "on" / "vectors.bin").read_bytes() == (tmp_path / "off" / "vectors.bin").read_bytes()
    # evaluate=false: no evaluation at all, neither while training nor at the end
    run(compose_run_config(*common, "train.epochs=3", "evaluate=false"), tmp_path / "none", show_progress=False)
    assert len(scalar_steps(tmp_path / "none", "train/loss")) >= 50
    assert not [tag for tag in scalar_tags(tmp_path / "none") if tag.startswith("eval/")]
