"""train.init_from: continuing an earlier run on a new corpus (w2v/continued.py)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors
from tokenizers import Tokenizer

from tests.helpers import compose_run_config, run_train

TOPICS, OLD_PER_TOPIC, NEW_PER_TOPIC, IN_B = 8, 12, 4, 6  # B has the first IN_B old words of each topic
SMALL = ["model.dim=16", "vocab.min_count=5", "vocab.sample=0", "train.threads=1", "train.device=cpu",
         "evaluate=false", "train.eval_every=0", "export.projector_words=0"]


def old_words(topic: int) -> list[str]:
    return [f"t{topic}o{i}" for i in range(OLD_PER_TOPIC)]


def new_words(topic: int) -> list[str]:
    return [f"t{topic}n{i}" for i in range(NEW_PER_TOPIC)]


def topic_text(lines: int, pools: list[list[str]], seed: int, extra: list[str] = ()) -> str:
    """Lines of 10 words, each line from one topic's pool: topic-mates share their contexts."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        pool = pools[rng.randrange(len(pools))]
        out.append(" ".join(rng.choice(pool) for _ in range(10)))
    return "\n".join(out + list(extra)) + "\n"


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    """A: the old words of every topic. B: new words with part of the old ones (the rest absent), plus a word
    frequent enough to rank first, and one rarer than vocab.min_count. A+B: both texts."""
    folder = tmp_path_factory.mktemp("corpora")
    a = topic_text(1500, [old_words(t) for t in range(TOPICS)], seed=1)
    b = topic_text(1500, [old_words(t)[:IN_B] + new_words(t) for t in range(TOPICS)], seed=2,
                   extra=["often " * 9 + "often"] * 400 + ["rare rare"])
    paths = {}
    for name, text in (("a", a), ("b", b), ("ab", a + b)):
        paths[name] = folder / f"{name}.txt"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def train_in_process(run_dir: Path, corpus: Path, cache: Path, *overrides: str) -> dict:
    from w2v.train import run

    cfg = compose_run_config("data=files", f"data.paths=[{corpus}]", f"cache_dir={cache}", *SMALL, *overrides)
    return run(cfg, run_dir, show_progress=False)


def tables(run_dir: Path) -> dict:
    return torch.load(run_dir / "tables.pt", weights_only=True)


def vocab(run_dir: Path) -> dict[str, int]:
    return Tokenizer.from_file(str(run_dir / "tokenizer.json")).get_vocab()


@pytest.fixture(scope="module")
def runs(corpora, tmp_path_factory) -> dict[str, Path]:
    """A, then B continued from A; and A+B in one run (the same epochs over each word)."""
    root = tmp_path_factory.mktemp("runs")
    cache = root / "cache"
    train_in_process(root / "a", corpora["a"], cache, "train.epochs=5")
    train_in_process(root / "b", corpora["b"], cache, "train.epochs=5", f"train.init_from={root / 'a'}")
    train_in_process(root / "ab", corpora["ab"], cache, "train.epochs=5")
    return {name: root / name for name in ("a", "b", "ab")}


def test_old_words_keep_ids_and_new_words_get_rows(runs):
    before, after = vocab(runs["a"]), vocab(runs["b"])
    assert {w: after[w] for w in before} == before  # every old word, at its old id
    appended = sorted((i, w) for w, i in after.items() if w not in before)
    assert [i for i, _ in appended] == list(range(len(before), len(after)))  # new ids follow the old ones
    assert {w for _, w in appended} == {w for t in range(TOPICS) for w in new_words(t)} | {"often"}
    assert "rare" not in after  # below vocab.min_count in B
    a, b = tables(runs["a"]), tables(runs["b"])
    assert b["input"].shape == (len(after), 16) and b["output"].shape == (len(after), 16)
    # gensim's update=True: old counts plus this corpus's; new words their count in it.
    counts_b = json.loads((runs["b"] / "metrics.json").read_text())
    assert counts_b["init_from"] is not None
    often, o0 = after["often"], after["t0o0"]
    assert b["counts"][often] == 4000
    assert a["counts"][o0] < b["counts"][o0] and b["counts"][after["t0o11"]] == a["counts"][before["t0o11"]]
    # Exported most frequent first by the updated counts: "often", the last id, comes first.
    kv = KeyedVectors.load_word2vec_format(str(runs["b"] / "vectors.bin"), binary=True)
    assert kv.index_to_key[0] == "often" and len(kv) == len(after) - 1
    exported = [int(b["counts"][after[w]]) for w in kv.index_to_key]
    assert exported == sorted(exported, reverse=True)


def test_old_words_absent_from_the_new_corpus_keep_their_vectors(runs):
    """fused trains an input row only where its word is in the chunk (SGD, no weight decay, no momentum)."""
    before, after = vocab(runs["a"]), vocab(runs["b"])
    a, b = tables(runs["a"]), tables(runs["b"])
    absent = [before[w] for t in range(TOPICS) for w in old_words(t)[IN_B:]]
    present = [before[w] for t in range(TOPICS) for w in old_words(t)[:IN_B]]
    assert torch.equal(b["input"][absent], a["input"][absent])
    assert not torch.equal(b["output"][absent], a["output"][absent])  # still drawn as negatives
    moved = (b["input"][present] - a["input"][present]).norm(dim=1)
    assert (moved > 0.01 * a["input"][present].norm(dim=1)).all()
    kv_a = KeyedVectors.load_word2vec_format(str(runs["a"] / "vectors.bin"), binary=True)
    kv_b = KeyedVectors.load_word2vec_format(str(runs["b"] / "vectors.bin"), binary=True)
    for t in range(TOPICS):
        for word in old_words(t)[IN_B:]:
            assert np.array_equal(kv_a[word], kv_b[word])
    assert after.keys() >= before.keys()


def topic_purity(run_dir: Path, k: int = 5) -> float:
    """Share of the k nearest neighbours (cosine) of every topic word that are of its topic."""
    kv = KeyedVectors.load_word2vec_format(str(run_dir / "vectors.bin"), binary=True)
    words = [w for w in kv.index_to_key if w.startswith("t")]
    unit = np.stack([kv[w] / np.linalg.norm(kv[w]) for w in words])
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argsort(-sims, axis=1)[:, :k]
    topic = np.array([int(w[1:w.index("o" if "o" in w else "n")]) for w in words])
    return float((topic[nearest] == topic[:, None]).mean())


def test_a_then_b_scores_like_a_and_b_together(runs, corpora, tmp_path, monkeypatch):
    """Topic purity over every word (old, new, and old ones B lacks) after A then B is that of one run on
    A+B, and two broken continuations fall far below it: fresh rows instead of A's (the old words B lacks
    become noise), and A's rows given to the wrong ids."""
    together, continued = topic_purity(runs["ab"]), topic_purity(runs["b"])
    assert together > 0.8  # the topics are learnable at this size
    assert continued > together - 0.1
    from w2v import continued as module

    broken = {}
    for name, place in (("fresh rows", lambda self, inp, out: None),
                        ("ids shuffled", lambda self, inp, out: shuffled_rows(self, inp, out))):
        monkeypatch.setattr(module.EarlierRun, "place_rows", place)
        train_in_process(tmp_path / name, corpora["b"], tmp_path / "cache", "train.epochs=5",
                         f"train.init_from={runs['a']}")
        broken[name] = topic_purity(tmp_path / name)
    assert all(score < together - 0.25 for score in broken.values()), (together, continued, broken)


def shuffled_rows(earlier, input_table, output_table):
    order = torch.randperm(earlier.vocab_size - 1, generator=torch.Generator().manual_seed(0)) + 1
    input_table[1:earlier.vocab_size] = earlier.input_table[order]
    output_table[1:earlier.vocab_size] = earlier.output_table[order]


def test_token_id_cache_keys_on_the_earlier_vocabulary(runs, corpora, tmp_path):
    """The same corpus encoded for two vocabularies: two cache entries, each with its own ids."""
    cache = tmp_path / "cache"
    train_in_process(tmp_path / "plain", corpora["b"], cache, "train.epochs=1")
    train_in_process(tmp_path / "cont", corpora["b"], cache, "train.epochs=1", f"train.init_from={runs['a']}")
    entries = sorted(cache.glob("ids-*"))
    assert len(entries) == 2
    vocabularies = [Tokenizer.from_file(str(e / "tokenizer.json")).get_vocab() for e in entries]
    assert vocabularies[0] != vocabularies[1]
    assert vocab(tmp_path / "cont")["t0o11"] == vocab(runs["a"])["t0o11"]  # kept though absent from B
    assert "t0o11" not in vocab(tmp_path / "plain")


def no_dir(folder: Path) -> Path:
    return folder / "missing"


def empty_dir(folder: Path) -> Path:
    folder.mkdir()
    return folder


def damaged_files(folder: Path) -> Path:
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tables.pt").write_bytes(b"not a torch file")
    return folder


@pytest.mark.parametrize("make, message", [(no_dir, "no run dir at"), (empty_dir, "has no tokenizer.json"),
                                           (damaged_files, "unreadable tokenizer.json")])
def test_bad_init_from_is_one_line(tmp_path, corpora, make, message):
    result = run_train(["data=files", f"data.paths=[{corpora['b']}]", f"cache_dir={tmp_path / 'cache'}",
                        f"hydra.run.dir={tmp_path / 'run'}", f"train.init_from={make(tmp_path / 'earlier')}"],
                       cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: train.init_from: ") and message in last
    assert not (tmp_path / "run" / "vectors.bin").exists()


def test_an_earlier_run_without_tables_or_of_another_dim_is_one_line(runs, tmp_path):
    from w2v.errors import W2VError
    from w2v.train import load_earlier

    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "tokenizer.json").write_bytes((runs["a"] / "tokenizer.json").read_bytes())
    with pytest.raises(W2VError, match="has no tables.pt"):
        load_earlier(compose_run_config(f"train.init_from={partial}", "model.dim=16"))
    with pytest.raises(W2VError, match="16-dimensional vectors, this run model.dim=100"):
        load_earlier(compose_run_config(f"train.init_from={runs['a']}"))
    with pytest.raises(W2VError, match="vocab.pre_tokenizer=punct, this run with whitespace"):
        load_earlier(compose_run_config(f"train.init_from={runs['a']}", "model.dim=16",
                                        "vocab.pre_tokenizer=whitespace"))
    (partial / "tables.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(W2VError, match="has an unreadable tables.pt"):
        load_earlier(compose_run_config(f"train.init_from={partial}", "model.dim=16"))


def test_hierarchical_softmax_runs_are_refused_on_either_side(runs, tmp_path):
    """An hs output row is a Huffman inner node and a new vocabulary builds another tree, so neither an
    hs run continued nor an ns run continued as hs is allowed; the earlier run's loss is read from tables.pt."""
    from w2v.continued import TABLES_NAME
    from w2v.errors import W2VError
    from w2v.train import load_earlier

    with pytest.raises(W2VError, match="used model.loss=ns, this run model.loss=hs"):
        load_earlier(compose_run_config(f"train.init_from={runs['a']}", "model.dim=16", "model.loss=hs"))
    hs_run = tmp_path / "hs"
    hs_run.mkdir()
    (hs_run / "tokenizer.json").write_bytes((runs["a"] / "tokenizer.json").read_bytes())
    payload = torch.load(runs["a"] / TABLES_NAME, weights_only=True)
    torch.save({**payload, "loss": "hs"}, hs_run / TABLES_NAME)
    with pytest.raises(W2VError, match="used model.loss=hs, this run model.loss=ns"):
        load_earlier(compose_run_config(f"train.init_from={hs_run}", "model.dim=16"))
    assert load_earlier(compose_run_config(f"train.init_from={runs['a']}", "model.dim=16")).loss == "ns"
