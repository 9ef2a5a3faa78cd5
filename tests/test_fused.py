"""backend=fused: its hand-written updates equal autograd's, its windows equal batches.py's, and it learns."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import cbow_batch, hs_example, saturating, single, skipgram_batch, tables, zipf_chunk
from w2v.backends import BACKENDS, DenseBackend, init_tables
from w2v.backends.fused import FusedBackend
from w2v.batches import Chunk, epoch_chunks, keep_probability, noise_distribution
from w2v.config import BackendConfig, W2VError
from w2v.kernels import library_path, load_sgns
from w2v.objective import Batch, SkipGram, cbow_windows, make_objective, skipgram_pairs

needs_c = pytest.mark.skipif(load_sgns() is None, reason="no C compiler on this machine")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in conftest.py


@pytest.mark.parametrize("model,make", [("skipgram", skipgram_batch), ("cbow", cbow_batch)])
def test_torch_step_equals_autograd_sgd_step(model, make):
    """Summed closed-form gradients == autograd's, rows repeated in the batch included."""
    inp, out = tables()
    dense, fused = DenseBackend(inp, out), FusedBackend(inp, out)
    batch = make()
    loss_dense = dense.train_step(make_objective(model), batch, lr=0.3)
    loss_fused = fused.train_step(make_objective(model), batch, lr=0.3)
    torch.testing.assert_close(loss_fused, loss_dense)
    torch.testing.assert_close(fused.input_weights(), dense.input_weights())
    torch.testing.assert_close(fused.output_weights(), dense.output_weights())
    assert not torch.equal(fused.input_weights(), inp)  # it did move


@needs_c
@pytest.mark.parametrize("dim", [8, 100])  # 100: one of the dimensions the kernel compiles as a constant
@pytest.mark.parametrize("model,make", [("skipgram", skipgram_batch), ("cbow", cbow_batch)])
def test_c_kernel_equals_autograd_one_example_at_a_time(model, make, dim):
    """The C kernel applies examples in order: the same as autograd SGD on batches of one."""
    inp, out = tables(dim=dim)
    dense = DenseBackend(inp, out)
    batch = make()
    loss_dense = sum(float(dense.train_step(make_objective(model), single(batch, i), lr=0.3)) for i in range(batch.size))
    c_in, c_out = inp.clone(), out.clone()
    loss_c = load_sgns().train_examples(model == "cbow", c_in, c_out, batch.centres, batch.contexts, batch.mask,
                                        batch.negatives, lr=0.3)
    assert loss_c == pytest.approx(loss_dense, rel=1e-5)
    torch.testing.assert_close(c_in, dense.input_weights(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(c_out, dense.output_weights(), atol=1e-5, rtol=1e-4)


@needs_c
def test_c_kernel_differs_from_a_summed_batch_when_rows_repeat():
    """Sequential updates are not the summed batch step: the test above would catch a summing kernel."""
    inp, out = tables()
    batch = skipgram_batch()
    dense = DenseBackend(inp, out)
    dense.train_step(SkipGram(), batch, lr=0.3)
    c_in = inp.clone()
    load_sgns().train_examples(False, c_in, out.clone(), batch.centres, batch.contexts, None, batch.negatives, lr=0.3)
    assert (c_in - dense.input_weights()).abs().max() > 1e-4


@needs_c
def test_noise_draws_follow_unigram_to_the_075():
    counts = np.array([0, 1000, 300, 50, 7, 1, 0, 20], dtype=np.int64)
    kernel = load_sgns()
    draws = kernel.draw_noise(kernel.build_alias(noise_distribution(counts)), 400_000, seed=3)
    freq = np.bincount(draws, minlength=len(counts)) / len(draws)
    np.testing.assert_allclose(freq, noise_distribution(counts), atol=0.004)
    assert freq[0] == 0 and freq[6] == 0  # words never seen are never drawn


@pytest.mark.parametrize("use_c", [pytest.param(True, marks=needs_c), False])
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_a_chunk_trains_exactly_the_examples_batches_py_would_make(model, use_c):
    """Reduced windows and sentence bounds: the example count equals batches.py's expansion."""
    chunk = zipf_chunk()
    expected = len(skipgram_pairs(chunk, 5)[0]) if model == "skipgram" else len(cbow_windows(chunk, 5)[0])
    backend = FusedBackend(*init_tables(50, 16, seed=0))
    backend.use_c = use_c
    # A 50-word vocabulary makes every row frequent: small batches keep summed updates stable.
    backend.prepare(counts=np.bincount(chunk.ids, minlength=50), batch_size=32, seed=1)
    before = backend.input_weights().clone()
    loss, examples = backend.train_chunk(make_objective(model, 5, 5), chunk, 0.025, 0.02)
    assert examples == expected
    # The output table starts at zero (loss 6 ln 2 per example with 5 negatives); training lowers it.
    assert 0 < float(loss) / examples < 6 * np.log(2)
    assert not torch.equal(backend.input_weights(), before)
    assert backend.output_weights().abs().sum() > 0


def assert_topics_separate(backend, vocab: int, words_per_topic: int = 12) -> None:
    """Words of one topic (ids 1.., words_per_topic a topic) are far more alike than words of two topics."""
    vectors = torch.nn.functional.normalize(backend.input_weights()[1:], dim=1)
    similarity = vectors @ vectors.T
    topic = torch.arange(vocab - 1) // words_per_topic
    same = topic[:, None] == topic[None, :]
    off_diagonal = ~torch.eye(vocab - 1, dtype=torch.bool)
    within, between = similarity[same & off_diagonal].mean(), similarity[~same].mean()
    assert within - between > 0.4, (float(within), float(between))


def topic_corpus(n_topics: int = 8, words_per_topic: int = 12, sentences: int = 3000, seed: int = 0):
    """Sentences each drawn from one topic's words: a word's neighbours are its topic-mates."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, n_topics, sentences)
    ids = (1 + topic[:, None] * words_per_topic + rng.integers(0, words_per_topic, (sentences, 20))).reshape(-1)
    bounds = np.arange(0, len(ids) + 1, 20)
    return ids, bounds, n_topics * words_per_topic + 1


@pytest.mark.parametrize("use_c", [pytest.param(True, marks=needs_c), False])
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_fused_training_puts_topic_mates_together(model, use_c):
    """Quality bound on a corpus with known structure: topic-mates end up far more similar than strangers."""
    ids, bounds, vocab = topic_corpus()
    counts = np.bincount(ids, minlength=vocab)
    backend = FusedBackend(*init_tables(vocab, 24, seed=0))
    backend.use_c = use_c
    backend.prepare(counts=counts, batch_size=128, seed=1)
    rng = np.random.default_rng(0)
    for epoch in range(2):
        for chunk in epoch_chunks(ids, bounds, keep_probability(counts, 0), 5, rng, chunk_tokens=20_000):
            lr = 0.025 * (1 - epoch / 2)
            backend.train_chunk(make_objective(model, 5, 5), chunk, lr, lr - 0.0125)
    assert_topics_separate(backend, vocab)


@needs_c
def test_kernel_is_built_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("W2V_KERNEL_CACHE", str(tmp_path))
    first = library_path()
    assert first is not None and first.parent == tmp_path and first.exists()
    built_at = first.stat().st_mtime_ns
    assert library_path() == first and first.stat().st_mtime_ns == built_at  # no rebuild
    # no temp files left behind; the library's SHA-256, checked before each load, beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, first.name + ".sha256"]


def test_without_a_compiler_the_torch_path_is_used(monkeypatch):
    monkeypatch.setenv("W2V_NO_C", "1")
    assert load_sgns() is None
    backend = FusedBackend(*init_tables(50, 8, seed=0))
    assert backend.kernel is None
    chunk = zipf_chunk(800)
    backend.prepare(counts=np.bincount(chunk.ids, minlength=50), batch_size=64, seed=1)
    loss, examples = backend.train_chunk(make_objective("skipgram", 5, 5), chunk, 0.025, 0.02)
    assert examples == len(skipgram_pairs(chunk, 5)[0]) and np.isfinite(float(loss))


def test_backend_kernel_chooses_the_cpu_path(monkeypatch):
    """backend.kernel=torch trains with the torch steps although a C kernel is there; kernel=c refuses,
    in one line, a run that could not use it."""
    chunk = zipf_chunk(800)
    counts = np.bincount(chunk.ids, minlength=50)
    torch_path = BACKENDS["fused"].create(*init_tables(50, 8, seed=0), torch.device("cpu"),
                                          BackendConfig("fused", kernel="torch"))
    assert torch_path.kernel is None
    torch_path.prepare(counts, batch_size=64, seed=1)
    loss, examples = torch_path.train_chunk(make_objective("skipgram", 5, 5), chunk, 0.025, 0.02)
    assert isinstance(loss, torch.Tensor) and examples == len(skipgram_pairs(chunk, 5)[0])  # the C kernel returns a float
    with pytest.raises(W2VError, match="backend.kernel=c runs on the CPU only"):
        BACKENDS["fused"].create(*init_tables(50, 8, seed=0), torch.device("cuda"), BackendConfig("fused", kernel="c"))
    monkeypatch.setenv("W2V_NO_C", "1")
    with pytest.raises(W2VError, match="backend.kernel=c but the C kernel could not be built"):
        BACKENDS["fused"].create(*init_tables(50, 8, seed=0), torch.device("cpu"), BackendConfig("fused", kernel="c"))


def test_fused_is_registered_and_builds_on_the_cpu():
    backend = BACKENDS["fused"].create(*init_tables(20, 4, seed=0), torch.device("cpu"))
    assert backend.name == "fused" and backend.step_unit == "chunk" and backend.data_parallel == "tables"
    assert backend.input_weights().shape == (20, 4)



def test_a_failing_triton_kernel_falls_back_to_the_torch_steps(monkeypatch, caplog):
    """Where Triton is importable but cannot compile (no toolchain, driver mismatch), training
    goes on with the batched torch steps, on the very same negatives, after one warning."""
    import logging

    from w2v.kernels import sgns_triton

    attempts = []

    def broken(*args):
        attempts.append(1)
        raise RuntimeError("ptxas not found\nmore detail")

    monkeypatch.setattr(sgns_triton, "available", lambda device: True)
    monkeypatch.setattr(sgns_triton, "skipgram_examples", broken)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30, 200).astype(np.int64)
    chunk = Chunk(ids=ids, sentence=np.repeat(np.arange(10), 20).astype(np.int64),
                  window=rng.integers(1, 4, 200).astype(np.int64), raw_words=200)
    counts = np.arange(30, dtype=np.int64) + 1

    def backend(triton: bool):
        made = FusedBackend(*tables(), BackendConfig(name="fused", kernel="torch", triton=triton))
        made.prepare(counts, batch_size=64, seed=3)
        return made

    falling_back, reference = backend(triton=True), backend(triton=False)
    with caplog.at_level(logging.WARNING, logger="w2v"):
        for _ in range(2):
            falling_back.train_chunk(make_objective("skipgram", 3, 5), chunk, 0.1, 0.05)
    for _ in range(2):
        reference.train_chunk(make_objective("skipgram", 3, 5), chunk, 0.1, 0.05)
    assert len(attempts) == 1  # tried once, then not again
    assert [r.getMessage() for r in caplog.records if "Triton kernel failed" in r.getMessage()] == [
        "the Triton kernel failed (RuntimeError: ptxas not found); the fused backend uses batched torch steps "
        "from here on (backend.triton=false skips the attempt)"]
    assert torch.equal(falling_back.input_weights(), reference.input_weights())
    assert torch.equal(falling_back.output_weights(), reference.output_weights())
    assert not torch.equal(reference.input_weights(), tables()[0])


# -- the production C path (w2v_train_chunk / run_job) against a literal Python reference -------

THREAD0_SEED_STEP = 0x632BE59BD9B4E019  # sgns.c: thread t's stream starts at seed + step * (t + 1)


def reference_chunk(model: str, inp: np.ndarray, out: np.ndarray, ids, sentence, window, centres: tuple[int, int],
                    draws: np.ndarray, negative: int, lr_from: float, lr_to: float, *, lr_decay: bool = True,
                    sentence_bounds: bool = True, centre_range: bool = True, draw_offset: int = 0,
                    add_back: bool = True, tree=None) -> tuple[float, int]:
    """word2vec's per-example SGD over one chunk, written out in float64 loops (no shared code with sgns.c).

    Every centre in `centres` in text order, lr linear in its place among them; skip-gram: the centre's
    input row predicts each context in its reduced window and sentence; CBOW: the context mean predicts
    the centre and every context row gets the full error back. Example e takes draws[e*K:(e+1)*K] as
    its negatives (the kernel's stream, read one example ahead). Keyword switches turn one feature off,
    to show the comparison would catch its absence. Updates inp and out in place; returns (loss, examples).
    tree: hierarchical softmax instead (a w2v.huffman.HuffmanTree): the target's path, label 1 - code, no draws;
    each inner node's row moves at its tree.node_lr share of the step (the hidden vector's gradient does not).
    """
    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    def example(hidden: np.ndarray, target: int, negatives, lr: float) -> tuple[np.ndarray, float]:
        work, loss = np.zeros_like(hidden), 0.0
        if tree is None:
            rows = [(word, 1.0 if d == 0 else 0.0) for d, word in enumerate([target, *negatives])
                    if d == 0 or word != target]
        else:
            length = tree.lengths[target]
            rows = [(int(p), 1.0 - int(c)) for p, c in zip(tree.points[target, :length], tree.codes[target, :length])]
        for word, label in rows:
            row = out[word]
            score = float(hidden @ row)
            if tree is not None and abs(score) >= 6.0:  # word2vec.c leaves a saturated inner node alone
                loss += np.logaddexp(0.0, -score if label else score)
                continue
            g = (label - sigmoid(score)) * lr
            loss += np.logaddexp(0.0, -score if label else score)
            work += g * row
            node_scale = 1.0 if tree is None or tree.node_lr is None else float(tree.node_lr[word])
            out[word] = row + g * node_scale * hidden
        return work, loss

    n = len(ids)
    lo, hi = centres if centre_range else (0, n)
    total, e = 0.0, draw_offset
    for i in range(lo, hi):
        lr = lr_from + (lr_to - lr_from) * (i - lo) / (hi - lo) if lr_decay else lr_from
        b = int(window[i])
        context = [j for j in range(max(0, i - b), min(n - 1, i + b) + 1)
                   if j != i and (sentence[j] == sentence[i] or not sentence_bounds)]
        if model == "skipgram":
            for j in context:
                work, loss = example(inp[ids[i]].copy(), ids[j], draws[e * negative:(e + 1) * negative], lr)
                inp[ids[i]] += work
                total, e = total + loss, e + 1
        elif context:
            hidden = inp[ids[context]].mean(0)
            work, loss = example(hidden, ids[i], draws[e * negative:(e + 1) * negative], lr)
            for j in context:
                inp[ids[j]] += work if add_back else work / len(context)
            total, e = total + loss, e + 1
    return total, e - draw_offset


def small_chunk(n: int = 70, vocab: int = 12, window: int = 4, seed: int = 5):
    """A chunk with three sentences, a small vocabulary (rows recur, negatives hit targets) and a centre range
    that leaves context-only tokens at both ends, as a chunk cut inside a long line has."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, n).astype(np.int64)
    sentence = np.repeat([0, 1, 2], [18, 30, n - 48]).astype(np.int64)
    reduced = rng.integers(1, window + 1, n).astype(np.int64)
    return ids, sentence, reduced, (6, n - 5)


@needs_c
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
@pytest.mark.parametrize("dim", [8, 100])
def test_c_chunk_path_equals_the_reference_element_by_element(model, dim):
    """w2v_train_chunk as training runs it (run_job, one thread, its own draw-ahead negatives) against
    reference_chunk: in-chunk lr decay, reduced windows, sentence bounds, the centre range, the negative
    stream and CBOW's add-back. Each of those, left out of the reference, breaks the match."""
    kernel = load_sgns()
    vocab, negative, seed, lr_from, lr_to = 12, 5, 12345, 0.4, 0.05
    ids, sentence, reduced, centres = small_chunk(vocab=vocab)
    alias = kernel.build_alias(noise_distribution(np.arange(1, vocab + 1) ** 2))
    inp0 = (torch.rand(vocab, dim, generator=torch.Generator().manual_seed(0)) - 0.5)
    out0 = torch.randn(vocab, dim, generator=torch.Generator().manual_seed(1)) * 0.3
    c_in, c_out = inp0.clone(), out0.clone()
    loss_c, examples_c = kernel.train_chunk(model == "cbow", c_in, c_out, ids, sentence, reduced, negative, alias,
                                            lr_from, lr_to, seed, threads=1, centres=centres)
    draws = kernel.draw_noise(alias, 4000 * negative, seed=(seed + THREAD0_SEED_STEP) % 2**64)

    def reference(**switches):
        inp, out = inp0.double().numpy().copy(), out0.double().numpy().copy()
        loss, examples = reference_chunk(model, inp, out, ids, sentence, reduced, centres, draws, negative,
                                         lr_from, lr_to, **switches)
        return inp, out, loss, examples

    inp, out, loss, examples = reference()
    assert examples_c == examples > 20
    assert loss_c == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(c_in.numpy(), inp, atol=2e-6, rtol=1e-5)
    np.testing.assert_allclose(c_out.numpy(), out, atol=2e-6, rtol=1e-5)
    # The comparison is sharp: each feature, left out of the reference, moves some element far off.
    broken = [dict(lr_decay=False), dict(sentence_bounds=False), dict(centre_range=False), dict(draw_offset=1)]
    if model == "cbow":
        broken.append(dict(add_back=False))
    for switches in broken:
        inp_b, out_b, _, _ = reference(**switches)
        assert max(np.abs(inp_b - c_in.numpy()).max(), np.abs(out_b - c_out.numpy()).max()) > 1e-3, switches


@needs_c
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_one_thread_makes_a_fused_run_repeatable(model):
    """train.threads=1 (one torch thread, so one kernel thread): the same seed gives bit-identical tables,
    over several chunks and epochs. With more threads the Hogwild order varies run to run."""
    from w2v.config import TrainConfig
    from w2v.trainer import train

    assert torch.get_num_threads() == 1  # the one_torch_thread fixture
    rng = np.random.default_rng(0)
    vocab = 200
    ids = (rng.zipf(1.2, 600_000) % vocab).astype(np.int64)
    sentences = np.arange(0, len(ids) + 1, 50, dtype=np.int64)
    counts = np.bincount(ids, minlength=vocab)

    def tables_after(seed: int):
        backend = FusedBackend(*init_tables(vocab, 16, seed=seed))
        train(make_objective(model), TrainConfig(epochs=2, seed=seed), 1e-3, ids, sentences, counts, backend,
              torch.device("cpu"), show_progress=False)
        return backend.input_weights().clone(), backend.output_weights().clone()

    first, again, other = tables_after(7), tables_after(7), tables_after(8)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_chunk_seeds_give_unrelated_random_streams():
    """The kernel's splitmix64 state advances by GOLDEN per draw, so two chunks whose seeds differ
    by a small multiple of GOLDEN draw the same negatives shifted by a few draws (seeds
    `(a + chunk) * GOLDEN` did exactly that: each chunk reused the previous chunk's negatives)."""
    from w2v.backends.fused import chunk_seed

    golden, modulus = 0x9E3779B97F4A7C15, 1 << 64
    steps_per_seed_gap = pow(golden, -1, modulus)
    seeds = [chunk_seed(run_seed, chunk) for run_seed in (1, 2, 3) for chunk in range(200)]
    assert len(set(seeds)) == len(seeds)
    for a, b in zip(seeds, seeds[1:]):
        # how many draws apart the two streams start, either way round
        shift = (b - a) * steps_per_seed_gap % modulus
        assert min(shift, modulus - shift) > 1 << 40


# -- row marks: what the table sync compares (w2v/table_sync.py) ----------------------------------

def marked_chunk(n: int, seed: int = 3) -> tuple[Chunk, np.ndarray]:
    """A chunk over words 0-39 of a 200-word vocabulary whose noise reaches words 0-59: input rows 40+ and
    output rows 60+ are never written, and output rows 40-59 only where drawn as negatives."""
    rng = np.random.default_rng(seed)
    ids = rng.zipf(1.3, n) % 40
    sentences = np.concatenate([[0], np.sort(rng.choice(np.arange(1, n), n // 60, replace=False)), [n]])
    counts = np.zeros(200, dtype=np.int64)
    counts[:60] = np.bincount(ids, minlength=60)[:60] + 1
    return next(epoch_chunks(ids, sentences, np.ones(200), 5, rng, chunk_tokens=n)), counts


def changed(after: torch.Tensor, before: torch.Tensor) -> set[int]:
    return set(after.ne(before).any(1).nonzero().squeeze(1).tolist())


@pytest.mark.parametrize("use_c,threads", [pytest.param(True, 1, marks=needs_c), pytest.param(True, 2, marks=needs_c),
                                           (False, 1)])
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_training_marks_exactly_the_rows_it_changes(model, use_c, threads):
    """The C kernel marks every row it writes and no other (with 2 Hogwild threads too: 10,000 centres are
    enough to start the second); the torch path marks a superset of the rows that change (contexts outside
    a CBOW window get a zero update), and every changed row. Unmarked rows are never compared by the sync,
    so a changed row left unmarked would lose its move."""
    chunk, counts = marked_chunk(10_000)
    backend = FusedBackend(*tables(vocab=200, dim=8))
    backend.use_c = use_c
    backend.prepare(counts=counts, batch_size=64, seed=2)
    marks = backend.track_rows()
    before = [backend.input_weights().clone(), backend.output_weights().clone()]
    torch.set_num_threads(threads)
    backend.train_chunk(make_objective(model, 5, 5), chunk, 0.025, 0.02)
    for mark, table, old, never in zip(marks, (backend.input_weights(), backend.output_weights()), before, (40, 60)):
        moved, marked = changed(table, old), set(mark.nonzero().squeeze(1).tolist())
        assert 20 < len(moved) and max(moved) < never
        if use_c:
            assert marked == moved
        else:
            assert moved <= marked and max(marked) < never
    # The output rows 40-59 were written only as negatives: the marks follow the drawn noise, not the text.
    assert changed(backend.output_weights(), before[1]) & set(range(40, 60))


@needs_c
def test_the_c_compare_finds_the_rows_torch_finds():
    """w2v_changed_rows against torch's `ne(...).any(1)`: every row, or only the marked ones (cleared after).
    A row equal to base but marked is not moved; -0.0 against 0.0 is equal, as for torch; NaN is not."""
    from w2v.distributed import World
    from w2v.table_sync import TableSync

    kernel = load_sgns()
    base = torch.randn(300, 7, generator=torch.Generator().manual_seed(0))
    table = base.clone()
    table[[3, 50, 299], 6] += 1e-3  # the last element only: the whole row is compared
    table[120] += 1.0
    table[7, 0] = float("nan")
    base[9, 2], table[9, 2] = 0.0, -0.0
    expected = sorted(table.ne(base).any(1).nonzero().squeeze(1).tolist())
    assert expected == [3, 7, 50, 120, 299]
    assert kernel.changed_rows(table, base).tolist() == expected
    marks = torch.zeros(300, dtype=torch.uint8)
    marks[[3, 7, 9, 11, 50, 120, 299]] = 1  # 9 (signed zero) and 11 (untouched) are marked but equal
    for use_kernel in (True, False):
        sync = TableSync([table], World(), marks=[marks.clone()])
        sync.base, sync.kernel = [base], kernel if use_kernel else None  # as if base were the last sync's
        assert sync.moved_rows(0).tolist() == expected
        assert not sync.marks[0].any()
    marks[120] = 0  # a changed row left unmarked is not looked at: why every writer must mark
    assert kernel.changed_rows(table, base, marks).tolist() == [3, 7, 50, 299]
    with pytest.raises(ValueError, match="row marks"):
        kernel.changed_rows(table, base, torch.zeros(299, dtype=torch.uint8))


@needs_c
@pytest.mark.parametrize("bad_id", [12, -1, 2**40])
def test_the_c_kernel_refuses_ids_outside_the_vocabulary_before_writing(bad_id):
    """An id past the tables (or negative) anywhere in a chunk, even among the context-only tokens, is refused
    before any row is written: without the check it would read and write outside both tables."""
    kernel = load_sgns()
    vocab, dim = 12, 8
    ids, sentence, reduced, centres = small_chunk(vocab=vocab)
    ids[-1] = bad_id  # a context-only token after the centre range
    alias = kernel.build_alias(noise_distribution(np.arange(1, vocab + 1) ** 2))
    inp, out = torch.rand(vocab, dim), torch.rand(vocab, dim)
    before = inp.clone(), out.clone()
    with pytest.raises(ValueError, match="outside the vocabulary of 12 words"):
        kernel.train_chunk(False, inp, out, ids, sentence, reduced, 5, alias, 0.1, 0.05, 1, threads=1,
                           centres=centres)
    assert torch.equal(inp, before[0]) and torch.equal(out, before[1])
    ids[-1] = vocab - 1  # the same chunk with the last id in range trains
    kernel.train_chunk(False, inp, out, ids, sentence, reduced, 5, alias, 0.1, 0.05, 1, threads=1, centres=centres)
    assert not torch.equal(inp, before[0])


@pytest.mark.parametrize("bad_id", [50, -1])
def test_the_torch_and_triton_path_refuses_ids_outside_the_vocabulary_before_writing(bad_id):
    """Off the C kernel (the torch steps here; the Triton kernels take the same check) a chunk with an id
    past the tables is refused before any row moves: on a GPU it would be a silent out-of-bounds write."""
    chunk = zipf_chunk(800)
    backend = BACKENDS["fused"].create(*init_tables(50, 8, seed=0), torch.device("cpu"),
                                       BackendConfig("fused", kernel="torch"))
    backend.prepare(np.bincount(chunk.ids, minlength=50), batch_size=64, seed=1)
    before = backend.input_weights().clone(), backend.output_weights().clone()
    chunk.ids[-1] = bad_id
    with pytest.raises(ValueError, match="outside the vocabulary of 50 words"):
        backend.train_chunk(make_objective("skipgram", 5, 5), chunk, 0.025, 0.02)
    assert torch.equal(backend.input_weights(), before[0]) and torch.equal(backend.output_weights(), before[1])


@needs_c
def test_the_c_example_entry_refuses_ids_outside_the_vocabulary():
    kernel = load_sgns()
    inp, out = torch.rand(12, 8), torch.rand(12, 8)
    centres, contexts, negatives = torch.tensor([1, 2]), torch.tensor([[3], [4]]), torch.tensor([[5, 12], [6, 7]])
    with pytest.raises(ValueError, match="a negative id is outside the vocabulary of 12 words"):
        kernel.train_examples(False, inp, out, centres, contexts, None, negatives, 0.1)
    negatives[0, 1] = 11
    assert kernel.train_examples(False, inp, out, centres, contexts, None, negatives, 0.1) > 0


# -- hierarchical softmax (model.loss=hs) ----------------------------------------------------------

@pytest.mark.parametrize("node_sample", [0.0, 0.05])
@pytest.mark.parametrize("model,make", [("skipgram", skipgram_batch), ("cbow", cbow_batch)])
def test_hs_torch_step_equals_autograd_sgd_step(model, make, node_sample):
    """The closed-form step over Huffman paths == autograd's on the objective's loss, saturated nodes
    included, inner-node subsampling too; it moves only inner-node rows on the predicted words' paths."""
    objective, batch = hs_example(model, make, node_sample=node_sample)
    inp, out = tables()
    inp = saturating(objective, inp, out, batch, 3.0)  # saturated nodes take no update on either side
    dense, fused = DenseBackend(inp, out), FusedBackend(inp, out)
    loss_dense = dense.train_step(objective, batch, lr=0.3)
    loss_fused = fused.train_step(objective, batch, lr=0.3)
    torch.testing.assert_close(loss_fused, loss_dense)
    torch.testing.assert_close(fused.input_weights(), dense.input_weights())
    torch.testing.assert_close(fused.output_weights(), dense.output_weights())
    predicted = objective.predicted(batch.centres, batch.contexts)
    tree = objective.tree
    on_paths = {int(p) for w in predicted.tolist() for p in tree.points[w, :tree.lengths[w]]}
    moved = changed(fused.output_weights(), out)
    assert moved <= on_paths and len(moved) > len(on_paths) // 2  # saturated nodes may stay


@needs_c
@pytest.mark.parametrize("dim,scale", [(8, 1.0), (100, 0.08), (8, 3.0)])  # 100: the kernel's unrolled path;
@pytest.mark.parametrize("model,make", [("skipgram", skipgram_batch), ("cbow", cbow_batch)])  # 3.0: saturated
@pytest.mark.parametrize("node_sample", [0.0, 0.05])
def test_hs_c_kernel_equals_autograd_one_example_at_a_time(model, make, dim, scale, node_sample):
    objective, batch = hs_example(model, make, node_sample=node_sample)
    inp, out = tables(dim=dim)
    inp = inp * scale if scale < 2 else saturating(objective, inp, out, batch, scale)
    dense = DenseBackend(inp, out)
    loss_dense = sum(float(dense.train_step(objective, single(batch, i), lr=0.3)) for i in range(batch.size))
    c_in, c_out = inp.clone(), out.clone()
    loss_c = load_sgns().train_examples(model == "cbow", c_in, c_out, batch.centres, batch.contexts, batch.mask,
                                        batch.negatives, lr=0.3, tree=objective.tree)
    assert loss_c == pytest.approx(loss_dense, rel=1e-6)
    torch.testing.assert_close(c_in, dense.input_weights(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c_out, dense.output_weights(), atol=1e-6, rtol=1e-5)
    assert not torch.equal(c_out, out)


@needs_c
@pytest.mark.parametrize("node_sample", [0.0, 0.05])
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_hs_c_chunk_path_equals_the_reference_and_marks_the_inner_nodes(model, node_sample):
    """run_job's hierarchical-softmax path (one thread) against reference_chunk over the same tree, and its
    row marks: every inner-node row it writes is marked, and nothing else (the table sync relies on it)."""
    kernel = load_sgns()
    vocab, dim, lr_from, lr_to = 12, 8, 0.4, 0.05
    ids, sentence, reduced, centres = small_chunk(vocab=vocab)
    counts = np.bincount(ids, minlength=vocab) + 1
    objective = make_objective(model, 4, 5, "hs", counts, node_sample=node_sample)
    assert node_sample == 0 or objective.tree.node_lr.min() < 0.5  # the top nodes really are scaled
    alias = kernel.build_alias(noise_distribution(counts))
    inp0 = (torch.rand(vocab, dim, generator=torch.Generator().manual_seed(0)) - 0.5)
    out0 = torch.randn(vocab, dim, generator=torch.Generator().manual_seed(1)) * 0.3
    c_in, c_out = inp0.clone(), out0.clone()
    marks = (torch.zeros(vocab, dtype=torch.uint8), torch.zeros(vocab, dtype=torch.uint8))
    loss_c, examples_c = kernel.train_chunk(model == "cbow", c_in, c_out, ids, sentence, reduced, 0, alias,
                                            lr_from, lr_to, 7, threads=1, centres=centres, marks=marks,
                                            tree=objective.tree)
    inp, out = inp0.double().numpy().copy(), out0.double().numpy().copy()
    loss, examples = reference_chunk(model, inp, out, ids, sentence, reduced, centres, np.zeros(0, np.int64), 0,
                                     lr_from, lr_to, tree=objective.tree)
    assert examples_c == examples > 20
    assert loss_c == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(c_in.numpy(), inp, atol=2e-6, rtol=1e-5)
    np.testing.assert_allclose(c_out.numpy(), out, atol=2e-6, rtol=1e-5)
    for mark, table, before in zip(marks, (c_in, c_out), (inp0, out0)):
        assert set(mark.nonzero().squeeze(1).tolist()) == changed(table, before)
    assert changed(c_out, out0) <= set(range(vocab - 1))  # inner-node rows only: row V-1 is never one
    # the same chunk with negative sampling moves other output rows: the tree was really used
    ns_out = out0.clone()
    kernel.train_chunk(model == "cbow", inp0.clone(), ns_out, ids, sentence, reduced, 5, alias, lr_from, lr_to, 7,
                       threads=1, centres=centres)
    assert (ns_out - c_out).abs().max() > 1e-3


@needs_c
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_hs_threads_merge_every_update_of_their_copies_of_the_top_nodes(model):
    """With 2 threads each trains its own copy of the most used inner nodes (sgns.c's HotRows) and adds what
    it learned into the shared rows every 48 examples and after each block of centres. At a small step the updates add up to the
    same output table in any order, so the 2-thread table equals the 1-thread one to well under 1 % of what
    training moved, row by row in those top nodes too. Each of these, done to the kernel, fails it: no merge at
    the end of a block, no merge at all (100 % off), merges without the lock (two at once lose one's change)."""
    kernel = load_sgns()
    vocab, dim, n = 400, 8, 8000
    rng = np.random.default_rng(3)
    ids = (rng.zipf(1.2, n) % (vocab - 1) + 1).astype(np.int64)
    sentence = np.repeat(np.arange(80), n // 80).astype(np.int64)
    reduced = rng.integers(1, 6, n).astype(np.int64)
    counts = np.bincount(ids, minlength=vocab) + 1
    tree = make_objective(model, 4, 5, "hs", counts).tree
    alias = kernel.build_alias(noise_distribution(counts))
    inp0 = (torch.rand(vocab, dim, generator=torch.Generator().manual_seed(0)) - 0.5)
    out0 = torch.zeros(vocab, dim)
    tables_after = {}
    for threads in (1, 2):
        inp, out = inp0.clone(), out0.clone()
        kernel.train_chunk(model == "cbow", inp, out, ids, sentence, reduced, 0, alias, 1e-5, 1e-5, 7,
                           threads=threads, tree=tree)
        tables_after[threads] = (inp, out)
    top = slice(vocab - 1 - 32, vocab - 1)  # the inner nodes each thread copies (HS_HOT_ROWS), root last
    # The output rows: each update is lr * g * an input row, and at this step the input rows and the scores g
    # follows move by about 0.1 %, so
    # the order of the updates changes their sum by much less than 1 %. (The input rows' own moves follow the
    # output rows, which start at zero: those depend on the order.)
    one, two = tables_after[1][1], tables_after[2][1]
    assert (two - one).abs().max() < 0.01 * one.abs().max()
    moved_top = tables_after[1][1][top].abs().sum(1)
    assert (moved_top > 0).all()  # every copied node is on some path: the comparison covers them all
    np.testing.assert_array_less((tables_after[2][1][top] - tables_after[1][1][top]).abs().sum(1).numpy(),
                                 0.01 * moved_top.numpy())


@pytest.mark.parametrize("use_c", [pytest.param(True, marks=needs_c), False])
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_hs_training_puts_topic_mates_together(model, use_c):
    """Hierarchical softmax learns the planted structure as negative sampling does."""
    ids, bounds, vocab = topic_corpus()
    counts = np.bincount(ids, minlength=vocab)
    objective = make_objective(model, 5, 5, "hs", counts)
    backend = FusedBackend(*init_tables(vocab, 24, seed=0))
    backend.use_c = use_c
    backend.prepare(counts=counts, batch_size=128, seed=1)
    rng = np.random.default_rng(0)
    first = None
    for epoch in range(2):
        for chunk in epoch_chunks(ids, bounds, keep_probability(counts, 0), 5, rng, chunk_tokens=20_000):
            lr = 0.025 * (1 - epoch / 2)
            loss, examples = backend.train_chunk(objective, chunk, lr, lr - 0.0125)
            first = first if first is not None else float(loss) / examples
    # The loss falls: from log 2 a path step (zero output rows) to near the floor of this corpus, where a
    # word's context is any of its 12 topic-mates (ln 12 = 2.48 an example).
    untrained = objective.tree.lengths[1:].mean() * np.log(2)
    assert float(loss) / examples < min(first, 0.6 * untrained), (float(loss) / examples, first, untrained)
    assert_topics_separate(backend, vocab)


@pytest.mark.parametrize("model,make", [("skipgram", skipgram_batch), ("cbow", cbow_batch)])
def test_hs_node_subsampling_scales_each_inner_node_row_step_and_nothing_else(model, make):
    """One summed step with inner-node subsampling against one without, from the same tables: the input rows
    take the same step (their gradient is the rows' before the step), and every inner node's row takes its
    node_lr share of the unscaled step, the root far less than the nodes of rare words."""
    scaled_objective, batch = hs_example(model, make, node_sample=0.05)
    plain_objective, _ = hs_example(model, make)
    inp, out = tables()
    scaled, plain = FusedBackend(inp, out), FusedBackend(inp, out)
    scaled.train_step(scaled_objective, batch, lr=0.3)
    plain.train_step(plain_objective, batch, lr=0.3)
    torch.testing.assert_close(scaled.input_weights(), plain.input_weights())
    node_lr = torch.from_numpy(scaled_objective.tree.node_lr)
    plain_step = plain.output_weights() - out
    expected = out.clone()
    expected[:len(node_lr)] += node_lr.unsqueeze(1) * plain_step[:len(node_lr)]
    torch.testing.assert_close(scaled.output_weights(), expected)
    root = len(node_lr) - 1
    assert node_lr[root] < 0.5 and node_lr.max() == 1.0 and plain_step[root].abs().max() > 0
