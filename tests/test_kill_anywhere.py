"""kill -9 at random moments (encoding, training, checkpoint save, export), then resume; and full disks.

Each killed run is a forked child of the test process (torch is imported once, so ten kills and
their resumes fit in seconds): a hook placed at the drawn moment sends the child SIGKILL, which
no handler, `finally` or atexit sees. After every kill the run dir and the token-id cache must
hold only complete files under their final names, and the checkpoint must be the last one whose
save finished; the next run, always launched with train.resume=true, continues from there.
The last one completes, and must have counted every corpus word exactly once per epoch.
"""
from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.helpers import zipf_text
from tests.helpers import compose_run_config
from w2v.config import W2VError

EPOCHS = 3
OVERRIDES = ["backend=dense", "model=cbow", "model.dim=8", "model.window=2", "vocab.min_count=2",
             f"train.epochs={EPOCHS}", "train.batch_size=128", "train.threads=1", "evaluate=false",
             "export.projector_words=0"]
CHECKPOINT_EVERY = 1000  # corpus words
# The phases in the order a run meets them, and how many of the ten kills land in each.
PLAN = [("encode", 2), ("train", 3), ("checkpoint", 3), ("export", 2)]


def kill_now() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill(phase: str, rng: random.Random, progress: Path) -> str:
    """Patch the code so this process kills itself at a random moment of `phase`; returns where."""
    import torch

    import w2v.atomic
    import w2v.export
    import w2v.token_ids
    import w2v.train
    import w2v.trainer

    def log_saves(real):  # tell the parent which checkpoint saves finished
        def save_checkpoint(path, backend, loop_state, key):
            real(path, backend, loop_state, key)
            with open(progress, "a") as f:
                f.write(f"{loop_state['stats']['steps']}\n")
        return save_checkpoint
    w2v.train.save_checkpoint = log_saves(w2v.train.save_checkpoint)

    def after(module, name, calls=1):
        real, seen = getattr(module, name), [0]

        def wrapper(*args, **kwargs):
            result = real(*args, **kwargs)
            seen[0] += 1
            if seen[0] == calls:
                kill_now()
            return result
        setattr(module, name, wrapper)

    if phase == "encode":
        where = rng.choice(["after the text pass", "after the final ids", "among the checksums", "before the rename"])
        if where == "after the text pass":
            after(w2v.token_ids, "number_corpus")
        elif where == "after the final ids":
            after(w2v.token_ids, "write_final_ids")
        elif where == "among the checksums":
            after(w2v.token_ids, "file_checksum", calls=rng.randint(1, 4))
        else:
            real_replace = os.replace

            def replace(src, dst):
                if Path(src).name.startswith(".ids-"):
                    kill_now()
                return real_replace(src, dst)
            w2v.token_ids.os.replace = replace
        return where
    if phase == "train":
        calls = rng.randint(2, 14)  # learning_rate runs twice a step: within the first 7 steps
        after(w2v.trainer, "learning_rate", calls=calls)
        return f"call {calls} of learning_rate"
    if phase == "checkpoint":
        save, fraction = rng.randint(1, 2), rng.choice([0.0, 0.3, 0.9, 1.0])
        real_save, seen = torch.save, [0]

        def torch_save(obj, f, *args, **kwargs):
            seen[0] += 1
            if seen[0] == save:  # this save dies with `fraction` of its bytes in the temp file
                import io

                buffer = io.BytesIO()
                real_save(obj, buffer, *args, **kwargs)
                f.write(buffer.getvalue()[:int(fraction * len(buffer.getvalue()))])
                f.flush()
                kill_now()
            return real_save(obj, f, *args, **kwargs)
        w2v.checkpoint.torch.save = torch_save
        return f"save {save} of this run, {fraction:.0%} written"
    if phase == "export":
        where = rng.choice(["vectors.bin half written", "between vectors.bin and metrics.json",
                            "metrics.json half written"])
        if where == "vectors.bin half written":
            real_open = open

            class HalfThenKill:
                def __init__(self, path, mode):
                    self.file = real_open(path, mode)

                def write(self, data):
                    self.file.write(data[:len(data) // 2])
                    self.file.flush()
                    kill_now()

                def __enter__(self):
                    return self

                def __exit__(self, *exc):
                    self.file.close()
            w2v.export.open = HalfThenKill
        elif where == "between vectors.bin and metrics.json":
            def write_json(target, obj):
                kill_now()
            w2v.train.write_json = write_json
        else:
            def write_json(target, obj):
                with w2v.atomic.atomic_path(target) as tmp:
                    text = json.dumps(obj)
                    tmp.write_text(text[:len(text) // 2])
                    kill_now()
            w2v.train.write_json = write_json
        return where
    return "nowhere (runs to the end)"


def run_child(cfg, run_dir: Path, phase: str | None, rng: random.Random, progress: Path) -> tuple[int, str]:
    """Fork a run with train.resume=true, killed at a random moment of `phase`; (signal or -exit code, where)."""
    where = f"{phase}: " + ("" if phase is None else "(drawn in the child)")
    seed = rng.randrange(1 << 30)
    where_file = progress.with_suffix(".where")
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            import torch

            torch.set_num_threads(1)
            from w2v.run_dir import RunOptions
            from w2v.train import run

            if phase is not None:
                where_file.write_text(install_kill(phase, random.Random(seed), progress))
            options = RunOptions.from_config({"train": {"resume": True, "checkpoint_every": CHECKPOINT_EVERY}},
                                             run_dir)
            run(cfg, run_dir, show_progress=False, options=options)
            code = 0
        except W2VError as exc:
            print(f"error: {exc}")
            code = 2
        except BaseException:  # noqa: BLE001 - a bug: show it, and fail the test through the exit code
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"run killed at {where} hung")
        time.sleep(0.02)
    if phase is not None and where_file.exists():
        where = f"{phase}: {where_file.read_text()}"
    return (os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)), where


def run_child_inline(cfg, run_dir: Path) -> bytes:
    """An uninterrupted run in this process, checkpointing as the killed ones do; its vectors.bin."""
    from w2v.checkpoint import CheckpointPolicy
    from w2v.run_dir import RunOptions
    from w2v.train import run

    run(cfg, run_dir, show_progress=False, options=RunOptions(checkpoint=CheckpointPolicy(CHECKPOINT_EVERY)))
    return (run_dir / "vectors.bin").read_bytes()


def read_word2vec_binary(path: Path) -> int:
    """Number of vectors in a complete word2vec binary file; AssertionError if it is cut short or padded."""
    data = path.read_bytes()
    header, _, body = data.partition(b"\n")
    count, dim = map(int, header.split())
    pos = 0
    for _ in range(count):
        space = body.index(b" ", pos)
        pos = space + 1 + 4 * dim
        assert body[pos:pos + 1] == b"\n", f"{path} is truncated"
        pos += 1
    assert pos == len(body), f"{path} has {len(body) - pos} stray bytes"
    return count


def check_final_names(run_dir: Path, cache: Path) -> int | None:
    """Every file under a final name is complete; returns the checkpoint's step (None: no checkpoint)."""
    from tokenizers import Tokenizer

    from w2v.checkpoint import load_checkpoint
    from w2v.token_ids import open_cache

    for folder in cache.glob("ids-*"):
        open_cache(folder)  # checksums, shapes and id range
    if (run_dir / "vectors.bin").exists():
        assert read_word2vec_binary(run_dir / "vectors.bin") > 0
    if (run_dir / "metrics.json").exists():
        json.loads((run_dir / "metrics.json").read_text())
    if (run_dir / "tokenizer.json").exists():
        Tokenizer.from_file(str(run_dir / "tokenizer.json"))
    if (run_dir / "checkpoint.pt").exists():
        return load_checkpoint(run_dir / "checkpoint.pt")["loop"]["stats"]["steps"]
    return None


@pytest.mark.slow
def test_ten_sigkills_at_random_moments_then_resume_counts_every_word_once_per_epoch(tmp_path):
    seed = int(os.environ.get("W2V_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(zipf_text(8000, vocab=150, seed=3), encoding="utf-8")
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    cfg = compose_run_config("data=files", f"data.paths=[{corpus}]", f"cache_dir={cache}", *OVERRIDES)
    # One uninterrupted run in this process first: the reference vectors, and the children forked
    # afterwards start warm (a first run in a process spends seconds on lazy imports).
    reference = run_child_inline(compose_run_config("data=files", f"data.paths=[{corpus}]",
                                                    f"cache_dir={tmp_path / 'reference-cache'}", *OVERRIDES),
                                 tmp_path / "reference")
    kills = []
    for phase, times in PLAN:
        for _ in range(times):
            progress = tmp_path / f"saves-{len(kills)}.txt"
            before = check_final_names(run_dir, cache)
            result, where = run_child(cfg, run_dir, phase, rng, progress)
            kills.append(where)
            context = f"kill {len(kills)} ({where}); W2V_KILL_SEED={seed}"
            assert result == signal.SIGKILL, f"{context}: the run was not killed (exit {-result})"
            step = check_final_names(run_dir, cache)
            saves = [int(s) for s in progress.read_text().split()] if progress.exists() else []
            # The checkpoint is the last one whose save finished, whatever the kill interrupted.
            assert step == (saves[-1] if saves else before), f"{context}: checkpoint step {step}, saves {saves}"
            if phase == "checkpoint":
                # The kill struck inside a save, whose bytes sit in a temp file and nowhere else. (Whether a
                # checkpoint exists depends on the draws: if every train kill came before the first save and
                # this one killed save 1, there is none, and resuming rightly starts from the beginning.)
                assert len(list(run_dir.glob(".checkpoint.pt.*.tmp"))) == 1, f"{context}: no save was cut short"
            if phase == "encode":  # killed before the rename: nothing published, the next run encodes afresh
                assert not list(cache.glob("ids-*")), context
    result, _ = run_child(cfg, run_dir, None, rng, tmp_path / "saves-final.txt")
    assert result == 0, f"the resumed run failed (exit {-result}); kills: {kills}; W2V_KILL_SEED={seed}"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed"] and metrics["raw_words"] == EPOCHS * metrics["corpus_words"], (metrics, kills)
    assert read_word2vec_binary(run_dir / "vectors.bin") == metrics["vocab_size"]
    assert not (run_dir / "checkpoint.pt").exists()
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # orphans of the kills removed
    assert len(list(cache.glob("ids-*"))) == 1
    # Ten kills and eleven starts later, the very vectors of the uninterrupted run.
    assert (run_dir / "vectors.bin").read_bytes() == reference


# --- full disks --------------------------------------------------------------------------------------------------

def fill_disk_at(monkeypatch, name: str, nth: int = 1):
    """Make the nth durable write of a file called `name` fail with ENOSPC (atomic writes fsync before the rename)."""
    real_fsync, seen = os.fsync, [0]

    def fsync(fd):
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(f".{name}."):
            seen[0] += 1
            if seen[0] == nth:
                raise OSError(28, "No space left on device")
        return real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("name,nth", [("checkpoint.pt", 2), ("vectors.bin", 1), ("tables.pt", 1), ("metrics.json", 1),
                                      ("tokenizer.json", 1)])
def test_a_full_disk_ends_in_one_line_naming_the_file_and_keeps_earlier_outputs(tmp_path, monkeypatch, name, nth):
    from w2v.checkpoint import CheckpointPolicy, load_checkpoint
    from w2v.run_dir import RunOptions
    from w2v.train import run

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(zipf_text(4000, vocab=100), encoding="utf-8")
    run_dir = tmp_path / "run"
    cfg = compose_run_config("data=files", f"data.paths=[{corpus}]", f"cache_dir={tmp_path / 'cache'}",
                             *OVERRIDES)
    first_checkpoint = []
    import w2v.train

    real_save = w2v.train.save_checkpoint

    def save_checkpoint(path, backend, loop_state, key):
        real_save(path, backend, loop_state, key)
        first_checkpoint.append(path.read_bytes())
    monkeypatch.setattr(w2v.train, "save_checkpoint", save_checkpoint)
    if os.path.exists("/proc/self/fd"):
        fill_disk_at(monkeypatch, name, nth)
    else:
        pytest.skip("needs /proc to name the file being synced")
    with pytest.raises(W2VError) as failed:
        run(cfg, run_dir, show_progress=False, resolved_config="x: 1\n",
            options=RunOptions(checkpoint=CheckpointPolicy(every_words=2000)))
    message = str(failed.value)
    assert "\n" not in message and message == f"cannot write {run_dir / name}: No space left on device"
    assert not (run_dir / name).exists() or name == "checkpoint.pt"
    assert (run_dir / "config.resolved.yaml").read_text() == "x: 1\n"  # earlier outputs intact
    if name == "checkpoint.pt":  # the previous checkpoint survives the failed save
        assert (run_dir / name).read_bytes() == first_checkpoint[0]
        assert load_checkpoint(run_dir / name)["loop"]["stats"]["steps"] > 0
    if name == "metrics.json":
        assert read_word2vec_binary(run_dir / "vectors.bin") > 0
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_while_encoding_names_the_cache_and_publishes_nothing(tmp_path, monkeypatch):
    import w2v.token_ids
    from w2v.config import DataConfig, VocabConfig
    from w2v.corpus import open_corpus

    real = w2v.token_ids.write_final_ids

    def write_final_ids(provisional, final_of, ids_path, *args):
        ids_path.write_bytes(b"\0" * 100)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(w2v.token_ids, "write_final_ids", write_final_ids)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(zipf_text(2000, vocab=50), encoding="utf-8")
    cache = tmp_path / "cache"
    with pytest.raises(W2VError) as failed:
        w2v.token_ids.load_or_build(open_corpus(DataConfig(kind="files", paths=[str(corpus)]), tmp_path),
                                    VocabConfig(min_count=2), cache, show_progress=False, log=lambda m: None)
    message = str(failed.value)
    assert "\n" not in message and f"cannot write the token-id cache {cache}/ids-" in message
    assert "No space left on device" in message and list(cache.iterdir()) == []  # nothing half-built left
    monkeypatch.setattr(w2v.token_ids, "write_final_ids", real)


def test_a_checkpoint_write_on_a_full_disk_is_an_oserror_not_a_runtimeerror(tmp_path, monkeypatch):
    """On a full disk torch.save raises RuntimeError("unexpected pos ..."), with the OSError only as its context
    (given a path, not even that: it writes in C++). Checked by hand on a 256 KB tmpfs; here the disk fills
    after 2 KB."""
    import torch

    import w2v.checkpoint
    from w2v.backends import init_tables, make_backend

    real_open = open

    class FillingFile:
        def __init__(self, path, mode):
            self.file, self.written = real_open(path, mode), 0

        def write(self, data):
            if self.written + len(data) > 2048:
                raise OSError(28, "No space left on device")
            self.written += len(data)
            return self.file.write(data)

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(w2v.checkpoint, "open", FillingFile, raising=False)
    backend = make_backend("dense", *init_tables(500, 8, seed=1), torch.device("cpu"))
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(W2VError, match=f"^cannot write {path}: No space left on device$"):
        w2v.checkpoint.save_checkpoint(path, backend, {"epoch": 0}, {"dim": 8})
    assert list(tmp_path.iterdir()) == []
