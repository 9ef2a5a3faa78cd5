"""backend=offload: host-resident tables, per-step row moves, write-back one step behind."""
import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors

from w2v.backends import BACKENDS
from w2v.config import W2VError, parse_config
from w2v.memory import check_fits
from w2v.objective import CBOW, Batch, SkipGram
from w2v.backends.offload import OffloadBackend, StepRows, patch_stale_rows

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in conftest.py


def pair(seed: int = 0, vocab: int = 12, dim: int = 4):
    gen = torch.Generator().manual_seed(seed)
    input_init, output_init = torch.randn(vocab, dim, generator=gen), torch.randn(vocab, dim, generator=gen)
    return BACKENDS["dense"].create(input_init, output_init, CPU), OffloadBackend.create(input_init, output_init, CPU)


def batch_over(words: list[int], gen: torch.Generator) -> Batch:
    pool = torch.tensor(words)
    pick = lambda *shape: pool[torch.randint(0, len(pool), shape, generator=gen)]  # noqa: E731
    return Batch(centres=pick(16), contexts=pick(16), negatives=pick(16, 3))


def test_patch_replaces_exactly_the_rows_the_previous_step_changed():
    rows = torch.arange(8.0).reshape(4, 2)  # rows of ids 0, 4, 7, 9
    previous = StepRows(ids_host=torch.tensor([1, 4, 7]), ids=torch.tensor([1, 4, 7]),
                        updated=torch.tensor([[-1.0, -1.0], [-4.0, -4.0], [-7.0, -7.0]]))
    patched = patch_stale_rows(rows, torch.tensor([0, 4, 7, 9]), previous)
    assert patched.tolist() == [[0.0, 1.0], [-4.0, -4.0], [-7.0, -7.0], [6.0, 7.0]]


def test_write_back_lags_one_step_and_reading_the_weights_flushes_it():
    dense, offload = pair()
    gen = torch.Generator().manual_seed(1)
    start = offload.tables[0].clone()
    batch = batch_over([0, 1, 2, 3], gen)
    dense.train_step(SkipGram(), batch, 0.1)
    offload.train_step(SkipGram(), batch, 0.1)
    assert torch.equal(offload.tables[0], start)  # the update is still pending ...
    torch.testing.assert_close(offload.lookup_input(torch.tensor([0, 3, 5])),
                               dense.input_weights()[[0, 3, 5]])  # ... but a lookup sees it
    assert not torch.equal(offload.tables[0], start)
    torch.testing.assert_close(offload.input_weights(), dense.input_weights())
    torch.testing.assert_close(offload.output_weights(), dense.output_weights())


def test_overlapping_consecutive_batches_train_like_dense():
    # Every batch shares rows with the one before, so each step reads rows whose update is
    # still pending on the host: only the patch from the previous step's rows keeps them right.
    dense, offload = pair(vocab=30)
    gen = torch.Generator().manual_seed(2)
    for step in range(12):
        words = list(range(step, step + 8))
        skip, cbow = batch_over(words, gen), batch_over(words, gen)
        cbow = Batch(centres=cbow.centres, contexts=cbow.negatives.repeat(1, 2), negatives=cbow.negatives,
                     mask=torch.rand(16, 6, generator=gen) < 0.8)
        for backend in (dense, offload):
            backend.train_step(SkipGram(), skip, 0.2)
            backend.train_step(CBOW(), cbow, 0.2)
    torch.testing.assert_close(offload.input_weights(), dense.input_weights(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(offload.output_weights(), dense.output_weights(), atol=1e-6, rtol=1e-5)


def test_tables_stay_on_the_host_and_are_pinned_only_for_a_cuda_device():
    _, offload = pair()
    offload.to(CPU)
    assert list(offload.parameters()) == []  # nothing for Module.to() or an optimiser to move
    for table in offload.tables:
        assert table.device.type == "cpu" and not table.is_pinned()


def test_memory_guard_sends_a_table_too_big_for_the_device_to_offload():
    cuda, eight_gib = torch.device("cuda"), 8 * 1024 ** 3
    shape = dict(vocab_size=5_000_000, dim=300, objective=SkipGram(window=5, negative=5), batch_size=1024)
    with pytest.raises(W2VError, match="backend=offload"):
        check_fits(BACKENDS["dense"], **shape, device=cuda, available=eight_gib)
    with pytest.raises(W2VError, match="backend=offload"):
        check_fits(BACKENDS["sparse"], **shape, device=cuda, available=eight_gib)
    check_fits(OffloadBackend, **shape, device=cuda, available=eight_gib)  # only the batch's rows need room
    # Without a device to offload to, the tables are in the very memory being checked.
    # 11.2 GiB of tables, as much again for the initial tables while the backend copies them, and
    # 1.0 GiB for the end of the run (the word list and the export's buffers, 192 B a word + 64 MiB).
    with pytest.raises(W2VError, match=r"backend=offload needs 23\.3 GiB .*initial copies 11\.2, export 1\.0") as refused:
        check_fits(OffloadBackend, **shape, device=CPU, available=eight_gib)
    assert "use backend=offload" not in str(refused.value) and "or backend=offload" not in str(refused.value)


@pytest.mark.slow
def test_pipeline_with_offload_matches_dense(tmp_path, tiny_corpus):
    """`python -m w2v.train backend=offload`, in process: the same vectors as backend=dense."""
    from w2v.train import run

    vectors = {}
    for backend in ("dense", "offload"):
        cfg = parse_config({"model": {"name": "skipgram", "dim": 16, "window": 3, "negative": 4},
                            "backend": {"name": backend},
                            "data": {"kind": "files", "paths": [str(tiny_corpus)], "max_lines": 150},
                            "vocab": {"min_count": 2, "sample": 1e-3},
                            "train": {"epochs": 1, "lr": 0.025, "min_lr": 0.0001, "batch_size": 256,
                                      "device": "cpu", "threads": 1, "seed": 1, "log_every": 50},
                            "export": {"text": False, "projector_words": 0}, "evaluate": False,
                            "cache_dir": str(tmp_path / "cache")})
        metrics = run(cfg, tmp_path / backend, show_progress=False)
        assert metrics["backend"] == backend and metrics["steps"] > 5
        kv = KeyedVectors.load_word2vec_format(str(tmp_path / backend / "vectors.bin"), binary=True)
        vectors[backend] = (kv.index_to_key, kv.vectors, metrics["final_loss"])
    assert vectors["offload"][0] == vectors["dense"][0]
    np.testing.assert_allclose(vectors["offload"][1], vectors["dense"][1], atol=1e-5)
    assert vectors["offload"][2] == pytest.approx(vectors["dense"][2], rel=1e-5)
    assert np.abs(vectors["dense"][1]).max() > 0.5 / 16  # trained beyond word2vec's init range


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_streams_and_pinned_tables_train_like_dense():
    dense, _ = pair(vocab=30)
    offload = OffloadBackend.create(dense.input_weights(), dense.output_weights(), torch.device("cuda"))
    assert all(table.is_pinned() and table.device.type == "cpu" for table in offload.tables)
    gen = torch.Generator().manual_seed(3)
    for step in range(12):
        batch = batch_over(list(range(step, step + 8)), gen)
        dense.train_step(SkipGram(), batch, 0.2)
        on_gpu = Batch(centres=batch.centres.cuda(), contexts=batch.contexts.cuda(), negatives=batch.negatives.cuda())
        loss = offload.train_step(SkipGram(), on_gpu, 0.2)
        assert loss.device.type == "cuda"
    torch.testing.assert_close(offload.input_weights(), dense.input_weights(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(offload.output_weights(), dense.output_weights(), atol=1e-5, rtol=1e-4)
