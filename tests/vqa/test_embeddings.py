"""Question embedding: tokenisation through the vectors' tokenizer, OOV rows, and the three init modes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors

from w2v.errors import W2VError
from w2v.vocab import train_tokenizer
from w2v.vqa.data import VQASplit
from w2v.vqa.embeddings import (build_vocab, load_tokenizer, load_vectors, make_embedding, question_words,
                                resolve_vectors_paths)
from w2v.vqa.model import ModelConfig, VQAModel
from w2v.vqa.training import TrainConfig, encode_split, train_model

VECTOR_WORDS = ["what", "color", "is", "the", "ball", "cube", "red", "blue", "?", "how", "many"]
QUESTIONS = ["What colour is the ball?", "what color is the cube?", "How many orbs?", "what color is the ball?"]
EVAL_ONLY = "is the cube blue?"  # "blue" gets a row but never occurs in training
DIM = 8


@pytest.fixture
def vectors_dir(tmp_path):
    """A run dir like python -m w2v.train writes: vectors.bin + tokenizer.json."""
    rng = np.random.default_rng(0)
    kv = KeyedVectors(vector_size=DIM)
    kv.add_vectors(VECTOR_WORDS, rng.normal(size=(len(VECTOR_WORDS), DIM)).astype(np.float32))
    kv.save_word2vec_format(str(tmp_path / "vectors.bin"), binary=True)
    tokenizer = train_tokenizer([[" ".join(VECTOR_WORDS)]], min_count=1, max_size=None)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    return tmp_path


def test_questions_are_split_by_the_vectors_tokenizer(vectors_dir):
    tokenizer = load_tokenizer(vectors_dir / "tokenizer.json")
    assert question_words(tokenizer, "What COLOUR is the Ball?") == ["what", "colour", "is", "the", "ball", "?"]


def test_missing_or_broken_files_are_one_line_errors(vectors_dir, tmp_path):
    with pytest.raises(W2VError, match="vectors not found"):
        resolve_vectors_paths(str(tmp_path / "nope"), None)
    (tmp_path / "bad.bin").write_bytes(b"not a word2vec file")
    with pytest.raises(W2VError, match="cannot read"):
        load_vectors(tmp_path / "bad.bin")
    with pytest.raises(W2VError, match="tokenizer not found"):
        load_tokenizer(tmp_path / "missing.json")
    vectors, tokenizer = resolve_vectors_paths(str(vectors_dir), None)  # a run dir is accepted
    assert vectors == vectors_dir / "vectors.bin" and tokenizer == vectors_dir / "tokenizer.json"


def test_pretrained_vectors_sharing_no_question_word_are_a_one_line_error(vectors_dir):
    kv = load_vectors(vectors_dir / "vectors.bin")
    vocab = build_vocab([["zebra", "orbs"], ["zebra"]], set(kv.key_to_index))
    assert vocab.oov_words == ["zebra", "orbs"]
    with pytest.raises(W2VError, match="none of the 2 question words has a vector"):
        make_embedding(vocab, kv, DIM, freeze=False, normalize=True, generator=torch.Generator().manual_seed(0))


def test_oov_words_get_their_own_rows_and_pretrained_rows_are_rescaled(vectors_dir):
    tokenizer = load_tokenizer(vectors_dir / "tokenizer.json")
    kv = load_vectors(vectors_dir / "vectors.bin")
    tokens = [question_words(tokenizer, q) for q in QUESTIONS]
    vocab = build_vocab(tokens, set(kv.key_to_index))
    assert vocab.oov_words == ["colour", "orbs"]
    assert vocab.words[:2] == ["[PAD]", "[UNK]"] and vocab.n_extra == 4
    assert vocab.encode(["colour", "zebra"]) == [vocab.row["colour"], 1]  # unseen word -> [UNK]
    embedding = make_embedding(vocab, kv, DIM, freeze=True, normalize=True, generator=torch.Generator().manual_seed(0),
                               center=False)
    ball = embedding(torch.tensor([vocab.row["ball"]]))[0]
    expected = torch.from_numpy(kv["ball"] / np.linalg.norm(kv["ball"]) * DIM ** 0.5)
    assert torch.allclose(ball, expected, atol=1e-5)
    assert torch.equal(embedding(torch.tensor([0]))[0], torch.zeros(DIM))  # padding row
    # Centred (the default): the file's mean vector is removed before rescaling.
    centred = make_embedding(vocab, kv, DIM, freeze=True, normalize=True, generator=torch.Generator().manual_seed(0))
    offset = kv["ball"] - kv.vectors.mean(axis=0)
    assert torch.allclose(centred(torch.tensor([vocab.row["ball"]]))[0],
                          torch.from_numpy(offset / np.linalg.norm(offset) * DIM ** 0.5), atol=1e-5)


def _train(vectors_dir, init: str, freeze: bool):
    """Train a tiny model on feature 'images'; returns (vocab, embedding weights before, after)."""
    tokenizer = load_tokenizer(vectors_dir / "tokenizer.json")
    kv = load_vectors(vectors_dir / "vectors.bin")
    tokens = [question_words(tokenizer, q) for q in QUESTIONS]
    vocab = build_vocab(tokens + [question_words(tokenizer, EVAL_ONLY)],
                        set(kv.key_to_index) if init == "pretrained" else None)
    generator = torch.Generator().manual_seed(0)
    embedding = make_embedding(vocab, kv if init == "pretrained" else None, DIM, freeze, True, generator)
    features = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    split = VQASplit(questions=QUESTIONS, answers=np.array([0, 1, 2, 0]), image_rows=np.arange(4),
                     images=features, kinds=[])
    model = VQAModel(embedding, ModelConfig(hidden=16, channels=8), 3, "features", (5,))
    snapshot = lambda: {name: p.detach().clone() for name, p in model.question.embedding.named_parameters()}
    before = snapshot()
    torch.manual_seed(0)
    train_model(model, encode_split(split, [vocab.encode(t) for t in tokens]),
                TrainConfig(epochs=3, batch_size=2, lr=0.05, threads=1), torch.device("cpu"))
    return vocab, before, snapshot(), model


def test_frozen_pretrained_rows_stay_bit_identical_while_oov_rows_train(vectors_dir):
    vocab, before, after, model = _train(vectors_dir, "pretrained", freeze=True)
    assert not model.question.embedding.pretrained.weight.requires_grad
    assert torch.equal(before["pretrained.weight"], after["pretrained.weight"])
    extra_changed = (before["extra.weight"] != after["extra.weight"]).any(dim=1)
    for word in vocab.oov_words:  # both OOV words occur in the training questions
        assert extra_changed[vocab.row[word]], word
    assert not extra_changed[0]  # padding stays zero


def test_finetuned_pretrained_rows_change(vectors_dir):
    vocab, before, after, _ = _train(vectors_dir, "pretrained", freeze=False)
    changed = (before["pretrained.weight"] != after["pretrained.weight"]).any(dim=1)
    for word in ("what", "color", "ball", "cube"):
        assert changed[vocab.row[word] - vocab.n_extra], word
    # No weight decay: a word no training question uses keeps its pretrained row exactly.
    assert not changed[vocab.row["blue"] - vocab.n_extra]


def test_random_init_trains_every_question_word(vectors_dir):
    vocab, before, after, model = _train(vectors_dir, "random", freeze=False)
    assert model.question.embedding.pretrained is None and vocab.oov_words == []
    changed = (before["extra.weight"] != after["extra.weight"]).any(dim=1)
    trained = [vocab.row[w] for w in vocab.words[2:] if w != "blue"]
    assert changed[trained].all() and not changed[0] and not changed[vocab.row["blue"]]
