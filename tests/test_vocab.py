from w2v.vocab import UNK, id_to_word, new_tokenizer, train_tokenizer


def test_normalisation_lowercases_nfkc_and_splits_on_every_kind_of_space():
    tok = new_tokenizer()
    pieces = [p for p, _ in tok.pre_tokenizer.pre_tokenize_str(
        tok.normalizer.normalize_str("The\u00a0CAFÉ\u2003ﬁne\u200bday\u2028end\x00x,y"))]
    assert pieces == ["the", "café", "fine", "day", "end", "x", ",", "y"]


def test_min_count_and_max_size_are_respected():
    lines = ["a a a a a b b b b b c c c d"] * 1
    tok = train_tokenizer([lines], min_count=4, max_size=None)
    assert set(tok.get_vocab()) == {UNK, "a", "b"}
    tok = train_tokenizer([lines], min_count=1, max_size=2)
    assert set(tok.get_vocab()) == {UNK, "a", "b"}


def test_no_silent_thirty_thousand_cap():
    words = [f"word{i}" for i in range(31000)]
    tok = train_tokenizer([[" ".join(words)]], min_count=1, max_size=None)
    assert tok.get_vocab_size() == 31001  # every word plus [UNK]


def test_id_to_word_inverts_the_vocabulary():
    tok = train_tokenizer([["x y y z z z"]], min_count=1, max_size=None)
    words = id_to_word(tok)
    assert all(tok.token_to_id(w) == i for i, w in enumerate(words))
    assert words[0] == UNK


def test_a_tokenizer_from_a_word_list_or_a_mapping_in_any_order_is_the_same():
    from w2v.vocab import tokenizer_for_vocab, tokenizer_for_words

    words = ["the", "σοφία", "naïve", "日本", "don", "'", "t", "walk"]
    listed = tokenizer_for_words(words)
    mapped = tokenizer_for_vocab({w: i + 1 for i, w in reversed(list(enumerate(words)))})  # handed over backwards
    assert listed.get_vocab() == mapped.get_vocab() == {UNK: 0, **{w: i + 1 for i, w in enumerate(words)}}
    assert listed.to_str() == mapped.to_str()
    for text in ["The naïve walk, don't!", "ΣΟΦΊΑ 日本 unseen"]:
        assert listed.encode(text).ids == mapped.encode(text).ids
    assert listed.encode("The naïve walk, don't!").ids == [1, 3, 8, 0, 5, 6, 7, 0]
