"""Phrases (w2v/phrases.py): planted collocations are found, scores are the formula's, gensim agrees."""
import math
import random
import re
from collections import Counter

import numpy as np
import pytest
from gensim.models.phrases import Phrases

from tests.helpers import run_train
from w2v import phrases as phrases_module
from w2v.config import DataConfig, PhrasesConfig, VocabConfig, W2VError
from w2v.corpus import Corpus, open_corpus
from w2v.encode import LINE_END_ID, number_corpus
from w2v.kernels import load_phrases, load_words
from w2v.phrases import _count_compiled, _count_numpy, find_phrases, join_phrases, joinable, phrase_ids, scores
from w2v.token_ids import load_or_build

# Each planted phrase is written as its words; "new york times" also holds "new york".
PLANTED = [("new", "york"), ("ice", "cream"), ("hot", "dog"), ("new", "york", "times")]
FILLER = [f"w{i}" for i in range(300)]
COUNTED = [load_phrases(), None]  # the C pair table, and the numpy path
COUNTED_IDS = ["c", "numpy"]


def planted_text(n_lines: int = 1500, seed: int = 0) -> str:
    """Zipf-distributed filler words (independent draws: their pairs are chance pairs), one line in
    three holding one planted phrase at a random place; the phrases' words occur nowhere else."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(len(FILLER))]
    lines = []
    for n in range(n_lines):
        words = rng.choices(FILLER, weights, k=rng.randint(5, 25))
        if n % 3 == 0:
            at = rng.randint(0, len(words))
            words[at:at] = PLANTED[(n // 3) % len(PLANTED)]
        lines.append(" ".join(words))
    return "\n".join(lines) + "\n"


def sentences_of(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def build(tmp_path, text, phrases, min_count=1):
    path = tmp_path / "c.txt"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    corpus = open_corpus(DataConfig(kind="files", paths=[str(path)]), tmp_path)
    return load_or_build(corpus, VocabConfig(min_count=min_count), tmp_path / "cache", show_progress=False,
                         log=lambda msg: None, phrases=phrases)


def decoded_lines(token_ids) -> list[list[str]]:
    words = {i: w for w, i in token_ids.tokenizer.get_vocab().items()}
    s = token_ids.sentences
    return [[words[int(i)] for i in token_ids.ids[s[k]:s[k + 1]]] for k in range(len(s) - 1)]


def provisional_stream(tmp_path, text):
    path = tmp_path / "c.txt"
    path.write_text(text)
    return number_corpus(Corpus(kind="files", paths=[path]).text_blocks(), tmp_path / "prov.int32", "punct",
                         kernel=load_words())


def test_planted_phrases_are_found_and_chance_pairs_are_not(tmp_path):
    vocab = build(tmp_path, planted_text(), PhrasesConfig(passes=2)).tokenizer.get_vocab()
    assert {"new_york", "ice_cream", "hot_dog", "new_york_times"} <= set(vocab)
    joined = [w for w in vocab if "_" in w]
    # Every phrase is made of planted words: no pair of filler words, however frequent, is joined.
    assert not [w for w in joined if re.search(r"w\d+", w)], joined
    assert sorted(joined) == ["hot_dog", "ice_cream", "new_york", "new_york_times"]
    # The words of a phrase that occur only inside it are gone as single tokens.
    assert "ice" not in vocab and "cream" not in vocab and "york" not in vocab


def test_one_pass_makes_bigrams_and_the_second_trigrams(tmp_path):
    one = build(tmp_path, planted_text(), PhrasesConfig(passes=1))
    two = build(tmp_path, planted_text(), PhrasesConfig(passes=2))
    assert "new_york" in one.tokenizer.get_vocab() and "new_york_times" not in one.tokenizer.get_vocab()
    lines_one, lines_two = decoded_lines(one), decoded_lines(two)
    assert sum(line.count("new_york_times") for line in lines_two) == sum(
        " ".join(line).count("new_york times") for line in lines_one) > 0


@pytest.mark.parametrize("kernel", COUNTED, ids=COUNTED_IDS)
@pytest.mark.parametrize("scoring", ["default", "npmi"])
def test_scores_equal_the_formula_computed_directly(tmp_path, kernel, scoring):
    text = planted_text(600)
    provisional = provisional_stream(tmp_path, text)
    a, b, pair_counts = (_count_compiled(provisional.path, kernel) if kernel is not None
                         else _count_numpy(provisional.path))
    # The direct computation, from the text: words and pairs of neighbours inside each line.
    unigrams = Counter(w for line in sentences_of(text) for w in line)
    bigrams = Counter(p for line in sentences_of(text) for p in zip(line, line[1:]))
    distinct, tokens, min_count = len(unigrams) + len(bigrams), sum(unigrams.values()), 5
    words = provisional.words.tolist()
    assert {(words[x], words[y]): c for x, y, c in zip(a, b, pair_counts)} == dict(bigrams)
    cfg = PhrasesConfig(passes=1, min_count=min_count, scoring=scoring, threshold=0.5 if scoring == "npmi" else 10)
    got = scores(pair_counts, provisional.counts[a], provisional.counts[b], distinct, tokens, cfg)
    for (x, y), score in zip(zip(a, b), got):
        pair = (words[x], words[y])
        count_ab, count_a, count_b = bigrams[pair], unigrams[pair[0]], unigrams[pair[1]]
        if scoring == "default":
            expected = (count_ab - min_count) * distinct / (count_a * count_b)
        elif count_ab < min_count:
            expected = -math.inf
        else:
            p_ab = count_ab / tokens
            expected = math.log(p_ab / (count_a / tokens * count_b / tokens)) / -math.log(p_ab)
        assert score == pytest.approx(expected, rel=1e-12), pair
    # find_phrases derives distinct and tokens from the counts itself and keeps the pairs above the threshold.
    fa, fb, fscore = find_phrases(a, b, pair_counts, provisional.counts, cfg)
    assert set(zip(fa.tolist(), fb.tolist())) == {(x, y) for x, y, s in zip(a, b, got) if s > cfg.threshold}
    assert len(fa) > 0


@pytest.mark.parametrize("scoring, threshold", [("default", 10.0), ("default", 3.0), ("npmi", 0.5)])
def test_same_phrases_and_text_as_gensim_phrases_run_twice(tmp_path, scoring, threshold):
    """gensim's Phrases counts the same way (pairs inside a sentence, len_vocab = distinct words + pairs),
    so with no connector words every pass must find the same phrases with the same scores."""
    text = planted_text(900, seed=3)
    cfg = PhrasesConfig(passes=2, threshold=threshold, min_count=5, scoring=scoring)
    ours = decoded_lines(build(tmp_path, text, cfg))
    sentences = sentences_of(text)
    first = Phrases(sentences, min_count=5, threshold=threshold, scoring=scoring)
    second = Phrases(first[sentences], min_count=5, threshold=threshold, scoring=scoring)
    assert ours == [line for line in second[first[sentences]] if line]

    provisional = provisional_stream(tmp_path, text)
    a, b, pair_counts = _count_compiled(provisional.path, load_phrases())
    pa, pb, pscore = find_phrases(a, b, pair_counts, provisional.counts, cfg)
    words = provisional.words.tolist()
    mine = {f"{words[x]}_{words[y]}": s for x, y, s in zip(pa, pb, pscore)}
    theirs = first.export_phrases()
    assert set(mine) == set(theirs) and len(mine) >= 3
    for phrase, score in theirs.items():
        assert mine[phrase] == pytest.approx(score, rel=1e-12)


def test_phrases_never_cross_a_line_end(tmp_path):
    # Across the line end, new york would score as w1 w2 does (each word 40 times, always together).
    text = "w1 w2 new\nyork w3 w4\n" * 40 + "w5 w6 w7\n" * 20
    vocab = build(tmp_path, text, PhrasesConfig(passes=1, threshold=0.1, min_count=1)).tokenizer.get_vocab()
    assert "new_york" not in vocab
    assert {"w1_w2", "york_w3"} <= set(vocab)  # joined inside the lines: the settings join what they may


def test_punctuation_runs_never_join(tmp_path):
    """With vocab.pre_tokenizer=punct, "(" and ".)" are tokens; they score as high as ice cream here."""
    text = planted_text(600).replace("ice cream", "ice cream ( zool .)")
    vocab = build(tmp_path, text, PhrasesConfig(passes=2)).tokenizer.get_vocab()
    assert "ice_cream" in vocab and not [w for w in vocab if "_" in w and ("(" in w or ".)" in w)]
    provisional = provisional_stream(tmp_path, text)
    a, b, pair_counts = _count_compiled(provisional.path, load_phrases())
    words = provisional.words.tolist()
    unrestricted = find_phrases(a, b, pair_counts, provisional.counts, PhrasesConfig(passes=1))
    restricted = find_phrases(a, b, pair_counts, provisional.counts, PhrasesConfig(passes=1), joinable(words))
    pairs = {(words[x], words[y]) for x, y in zip(*unrestricted[:2])}
    punctuated = {("cream", "("), ("(", "zool"), ("zool", ".)")}
    assert punctuated <= pairs  # what gensim would join
    assert {(words[x], words[y]) for x, y in zip(*restricted[:2])} == pairs - punctuated
    assert joinable(["ice", "(", ".)", "_", "x2", "é", "new_york", "--"]).tolist() == [
        True, False, False, False, True, True, True, False]


@pytest.mark.parametrize("kernel", COUNTED, ids=COUNTED_IDS)
def test_small_pieces_give_the_same_text_as_one_piece(tmp_path, monkeypatch, kernel):
    """A line may span pieces (the one-line corpora): the counts and the rewrite carry across each cut."""
    text = planted_text(300, seed=5).replace("\n", " ", 200)  # 200 lines merged into one long line
    cfg = PhrasesConfig(passes=2, threshold=5.0, min_count=3)
    whole, _ = join_phrases(provisional_stream(tmp_path, text), cfg, kernel)
    expected = np.fromfile(whole.path, np.int32)
    for piece in (1, 2, 7, 1000):
        monkeypatch.setattr(phrases_module, "PIECE", piece)
        cut, stats = join_phrases(provisional_stream(tmp_path, text), cfg, kernel)
        np.testing.assert_array_equal(np.fromfile(cut.path, np.int32), expected)
        assert cut.words.tolist() == whole.words.tolist() and np.array_equal(cut.counts, whole.counts)
    assert stats[0].joined > 0 and stats[1].phrases > 0
    assert np.array_equal(whole.counts, np.bincount(expected, minlength=len(whole.words)))


def test_compiled_and_numpy_paths_write_the_same_stream(tmp_path):
    text = planted_text(600, seed=7)
    cfg = PhrasesConfig(passes=2, threshold=4.0, min_count=3)
    c, _ = join_phrases(provisional_stream(tmp_path, text), cfg, load_phrases())
    n, _ = join_phrases(provisional_stream(tmp_path, text), cfg, None)
    np.testing.assert_array_equal(np.fromfile(c.path, np.int32), np.fromfile(n.path, np.int32))
    assert c.words.tolist() == n.words.tolist() and np.array_equal(c.counts, n.counts)


def test_a_phrase_spelled_like_a_word_shares_its_id():
    words = ["\0", "new", "york", "new_york", "times", "york_times"]
    ids, new = phrase_ids(words, np.array([1, 3, 1]), np.array([2, 4, 5]))
    # new+york is the word new_york; new_york+times and new+york_times are one new phrase.
    assert ids.tolist() == [3, 6, 6] and new == ["new_york_times"]


def test_second_run_hits_the_cache_and_phrase_settings_key_it(tmp_path):
    text = planted_text(600)
    first = build(tmp_path, text, PhrasesConfig(passes=2))
    second = build(tmp_path, text, PhrasesConfig(passes=2))
    assert not first.cache_hit and second.cache_hit
    np.testing.assert_array_equal(first.ids, second.ids)
    assert second.tokenizer.get_vocab() == first.tokenizer.get_vocab()
    for other in (PhrasesConfig(passes=1), PhrasesConfig(passes=2, threshold=20.0),
                  PhrasesConfig(passes=2, min_count=3), PhrasesConfig(passes=2, scoring="npmi", threshold=0.5)):
        assert not build(tmp_path, text, other).cache_hit


def test_phrases_none_leaves_the_ids_and_the_cache_unchanged(tmp_path):
    text = planted_text(600)
    without = build(tmp_path, text, None)
    none = build(tmp_path, text, PhrasesConfig(passes=0))
    assert none.cache_hit and none.tokenizer_path == without.tokenizer_path  # the same entry as before phrases
    np.testing.assert_array_equal(none.ids, without.ids)
    joined = build(tmp_path, text, PhrasesConfig(passes=2))
    assert len(joined.ids) < len(without.ids)  # and phrases do change them
    assert joined.counts.sum() == len(joined.ids)


@pytest.mark.parametrize("override, message", [
    ("phrases.threshold=0", "phrases.threshold must be > 0"),
    ("phrases.threshold=1.5 phrases.scoring=npmi", r"phrases.threshold must be in \[-1, 1\]"),
    ("phrases.scoring=pmi", "phrases.scoring must be default or npmi"),
    ("phrases.passes=-1", "phrases.passes must be >= 0"),
    ("phrases.min_count=0", "phrases.min_count must be >= 1"),
])
def test_invalid_phrase_settings_are_named(override, message):
    from tests.helpers import compose_config as compose_cfg

    from w2v.config import parse_config

    with pytest.raises(W2VError, match=message):
        parse_config(compose_cfg("phrases=default", *override.split()))


def test_phrases_group_defaults():
    from tests.helpers import compose_config as compose_cfg

    from w2v.config import parse_config

    assert parse_config(compose_cfg()).phrases.passes == 0
    cfg = parse_config(compose_cfg("phrases=default")).phrases
    assert (cfg.passes, cfg.threshold, cfg.min_count, cfg.scoring) == (2, 10.0, 5, "default")


@pytest.mark.slow
def test_trained_vectors_hold_the_phrases(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(planted_text())
    run_dir = tmp_path / "run"
    result = run_train(["data=files", f"data.paths=[{path}]", f"cache_dir={tmp_path / 'cache'}",
                        f"hydra.run.dir={run_dir}", "phrases=default", "export.text=true", "model.dim=8",
                        "train.epochs=1", "evaluate=false", "export.projector_words=0"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    exported = {line.split(" ", 1)[0] for line in (run_dir / "vectors.txt").read_text().splitlines()[1:]}
    assert {"new_york", "new_york_times", "ice_cream", "hot_dog"} <= exported
    bad = run_train(["phrases=bigrams"], cwd=tmp_path)
    assert bad.returncode == 2 and "unknown phrases 'bigrams'; valid: default, none" in bad.stderr
