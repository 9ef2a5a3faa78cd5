"""Load: several runs at once on one corpus and one cache folder; several evaluations of one vectors file at once.

The concurrent runs are processes forked from the test (torch, gensim and the pipeline imported
once, so four of them fit in seconds on two cores); they share nothing but the disk, as four
`python -m w2v.train` would: the corpus, the token-id cache folder and the kernel cache.
"""
from __future__ import annotations

import io
import os
import signal
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from tests.helpers import zipf_text
from tests.helpers import compose_run_config

RUNS = 4
FAST = ["model.dim=8", "model.window=2", "vocab.min_count=2", "train.epochs=1", "train.threads=1",
        "evaluate=false", "export.projector_words=0"]


def fork_all(jobs, timeout: float = 180) -> list[tuple[int, str]]:
    """Run each job (a function returning an exit code) in its own forked process, all at once.

    Returns (exit code, what it printed) per job; a signal shows as -signal.
    """
    children = []
    for k, job in enumerate(jobs):
        out = Path(f"/tmp/w2v-load-{os.getpid()}-{k}.out")
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                buffer = io.StringIO()
                with redirect_stdout(buffer):
                    code = job()
                out.write_text(buffer.getvalue())
            except BaseException as exc:  # noqa: BLE001 - reported through the exit code and the output
                import traceback

                out.write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            finally:
                os._exit(code)
        children.append((pid, out))
    results, deadline = [], time.monotonic() + timeout
    for pid, out in children:
        while not (done := os.waitpid(pid, os.WNOHANG))[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        if not done[0]:
            os.kill(pid, signal.SIGKILL)
            done = os.waitpid(pid, 0)
        status = done[1]
        results.append((os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status),
                        out.read_text() if out.exists() else ""))
        out.unlink(missing_ok=True)
    return results


@pytest.mark.slow
def test_four_runs_at_once_on_one_corpus_and_cache_then_four_evaluations_at_once(tmp_path, monkeypatch):
    from gensim.models import KeyedVectors

    import w2v.evaluate
    from w2v.train import run

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(zipf_text(20000, vocab=300), encoding="utf-8")
    # A fresh kernel cache: the four runs also build the C kernel (backend=fused) at the same time.
    monkeypatch.setenv("W2V_KERNEL_CACHE", str(tmp_path / "kernels"))
    cfgs = [compose_run_config("data=files", f"data.paths=[{corpus}]", f"cache_dir={tmp_path / 'cache'}",
                               f"train.seed={k + 1}", *FAST) for k in range(RUNS)]

    def train(k):
        def job() -> int:
            import torch

            torch.set_num_threads(1)
            run(cfgs[k], tmp_path / f"run{k}", show_progress=False)
            return 0
        return job

    for k, (code, output) in enumerate(fork_all([train(k) for k in range(RUNS)])):
        assert code == 0, f"run {k}: exit {code}\n{output[-3000:]}"
    loaded = [KeyedVectors.load_word2vec_format(str(tmp_path / f"run{k}" / "vectors.bin"), binary=True)
              for k in range(RUNS)]
    assert len({len(kv) for kv in loaded}) == 1 and len(loaded[0]) > 100  # one vocabulary, from one cache entry
    assert len({kv.vectors.tobytes() for kv in loaded}) == RUNS  # four seeds, four trainings
    assert len(list((tmp_path / "cache").glob("ids-*"))) == 1
    assert not [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no temp folder left

    vectors = tmp_path / "run0" / "vectors.bin"
    outputs = fork_all([lambda: w2v.evaluate.main([str(vectors)])] * RUNS)
    for code, output in outputs:
        assert code == 0, output[-3000:]
        assert output.startswith(f"vectors          {len(loaded[0])} x 8\nanalogy accuracy")
    assert len({output for _, output in outputs}) == 1  # the same figures from every one
