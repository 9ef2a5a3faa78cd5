"""`python -m w2v.train`: the whole pipeline, configured by Hydra (w2v/conf/config.yaml).

corpus -> vocabulary + token-id cache -> backend -> training loop -> vectors.bin,
metrics.json, TensorBoard events, all in Hydra's run dir (hydra.run.dir=... moves it).

Under `torchrun --nproc-per-node=N -m w2v.train hydra.run.dir=DIR ...` the same code
runs on N ranks (w2v/distributed.py): rank 0 tokenises and writes every output.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from .atomic import atomic_path, write_json
from .backends import BACKENDS, check_loss, init_tables, make_backend
from .checkpoint import (CHECKPOINT_NAME, Checkpointing, check_run_key, load_checkpoint, restore_backend, run_key,
                         save_checkpoint)
from .cli import resolve_device, run_hydra_app, user_errors
from .config import RunConfig, group_choices, parse_config
from .continued import TABLES_NAME, EarlierRun, load_earlier_run, save_tables
from .corpus import open_corpus
from .errors import W2VError
from .export import to_keyed_vectors, write_word2vec
from .distributed import (World, broadcast_tables, check_data_parallel, launched_rank, launched_world_size,
                          shard_blocks, shard_range, start_world)
from .memory import available_bytes, check_fits
from .objective import make_objective
from .run_dir import RunOptions, prepare_run_dir, refuse_before_hydra
from .signals import StopRequest
from .token_ids import TokenIds, load_or_build
from .table_eval import TableEvaluator
from .trainer import train
from .vocab import id_to_word

log = logging.getLogger("w2v")
EVAL_FIGURES = ("analogy_acc", "ws353_spearman", "simlex_spearman")


class Interrupted(W2VError):
    """Training stopped on a signal after writing a checkpoint; exits 128 + the signal number."""

    kind = "stopped"

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def write_tensorboard_embedding(writer, words: list[str], vectors: np.ndarray, counts: np.ndarray, top: int):
    """The projector view of the `top` most frequent words."""
    if top <= 0:
        return
    order = [i for i in np.argsort(-counts, kind="stable") if counts[i] > 0][:top]
    writer.add_embedding(torch.from_numpy(vectors[order]), metadata=[words[i] for i in order],
                         tag="word_vectors")


def load_token_ids(cfg: RunConfig, cache_dir: Path, world: World, show_progress: bool,
                   earlier: EarlierRun | None = None) -> TokenIds:
    """Rank 0 tokenises (or finds the cache) while the others wait; then they read the same cache."""
    def build() -> TokenIds:
        corpus = open_corpus(cfg.data, cache_dir)
        return load_or_build(corpus, cfg.vocab, cache_dir, show_progress=show_progress, log=log.info,
                             phrases=cfg.phrases, base=earlier)

    token_ids = world.on_main(build)
    if not world.is_main:
        token_ids = build()  # a cache hit (or, on a node that cannot see rank 0's cache, the same build)
    shapes = world.gather_objects((token_ids.tokenizer_path.parent.name, len(token_ids.ids), token_ids.vocab_size))
    if len(set(shapes)) > 1:
        raise W2VError(f"ranks disagree on the encoded corpus {shapes}; give every node the same corpus and cache_dir")
    return token_ids


def rank_shard(cfg: RunConfig, sentences: np.ndarray, world: World) -> tuple[int, int] | list[tuple[int, int]]:
    """This rank's token range(s): one contiguous range, or blocks of train.sync_every words dealt out in turn."""
    if cfg.train.shards == "interleaved" and world.distributed:
        return shard_blocks(sentences, world.rank, world.world_size, cfg.train.sync_every)
    return shard_range(sentences, world.rank, world.world_size)


def run(cfg: RunConfig, run_dir: Path, show_progress: bool = True, options: RunOptions | None = None,
        world: World | None = None, resolved_config: str | None = None) -> dict:
    """Run the pipeline; returns the metrics written to run_dir/metrics.json (rank 0; {} elsewhere)."""
    from torch.utils.tensorboard import SummaryWriter

    started = time.perf_counter()
    options, world = options or RunOptions(), world or World()
    device = resolve_device(cfg.train.device, world.local_rank if world.distributed else None)
    check_loss(BACKENDS[cfg.backend.name], cfg.model.loss)
    if world.distributed:
        check_data_parallel(BACKENDS[cfg.backend.name])
    # Ranks on one host share its cores.
    torch.set_num_threads(cfg.train.threads or max(1, (os.cpu_count() or 1) // world.local_world_size))
    torch.manual_seed(cfg.train.seed)
    cache_dir = Path(to_absolute_path(cfg.cache_dir)) if HydraConfig.initialized() else Path(cfg.cache_dir)

    # Read before the run dir is prepared: overwrite=true into the earlier run's own dir removes its files.
    earlier = load_earlier(cfg) if cfg.train.init_from else None
    world.on_main(lambda: prepare_run_dir(run_dir, options.resuming, options.overwrite))
    if options.resuming and options.resume is None and world.is_main:
        log.warning(f"train.resume=true: no checkpoint in {run_dir} (the run stopped before its first one); "
                    f"starting from the beginning")
    if world.is_main and resolved_config is not None:
        with atomic_path(run_dir / "config.resolved.yaml") as tmp:
            tmp.write_text(resolved_config, encoding="utf-8")
    token_ids = load_token_ids(cfg, cache_dir, world, show_progress, earlier)
    if token_ids.replaced_chars and world.is_main:
        for name, replaced in (token_ids.replaced_by_file or {"the corpus": token_ids.replaced_chars}).items():
            log.warning(f"{name}: replaced {replaced} undecodable byte sequences with U+FFFD (read as spaces)")
    vocab_size, n_tokens, counts = token_ids.vocab_size, len(token_ids.ids), token_ids.counts
    if earlier is not None:
        counts = earlier.updated_counts(counts)
        log.info(f"continuing {earlier.run_dir}: its {earlier.vocab_size - 1} words keep their ids and rows "
                 f"({int((token_ids.counts[1:earlier.vocab_size] > 0).sum())} of them in this corpus), "
                 f"{vocab_size - earlier.vocab_size} new words appended; counts are both corpora's")
    log.info(f"corpus: {n_tokens} in-vocabulary tokens, {len(token_ids.sentences) - 1} lines, "
             f"vocabulary {vocab_size - 1} words; device {device}, backend {cfg.backend.name}, "
             f"{world.world_size} rank(s)")
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(run_dir / "tokenizer.json") as tmp:
            shutil.copyfile(token_ids.tokenizer_path, tmp)

    # Ranks on one host share its memory; ranks on GPUs each have their own.
    shared = world.local_world_size if device.type == "cpu" and world.distributed else 1
    objective = make_objective(cfg.model.name, cfg.model.window, cfg.model.negative, cfg.model.loss,
                               counts=token_ids.counts,
                               node_sample=cfg.vocab.sample if cfg.model.hs_node_subsampling else 0.0)
    world.on_every_rank(lambda: check_fits(
        BACKENDS[cfg.backend.name], vocab_size, cfg.model.dim, objective, cfg.train.batch_size, device,
        available=available_bytes(device) // shared, world_size=world.world_size, sync_method=cfg.train.sync_method))
    input_init, output_init = init_tables(vocab_size, cfg.model.dim, cfg.train.seed, cfg.model.init_range)
    if earlier is not None:
        earlier.place_rows(input_init, output_init)
        del earlier  # its tables are copied: do not keep two
    backend = make_backend(cfg.backend.name, input_init, output_init, device, cfg.backend)
    del input_init, output_init  # the backend holds its own copy; do not keep two

    key = run_key(cfg, token_ids.tokenizer_path.parent.name, world.world_size)
    if cfg.train.init_from:  # the earlier run's tables and counts start this one
        key["init_from"] = str(Path(cfg.train.init_from).expanduser().resolve())
    resume_loop = resume_from(options.resume, backend, key, cfg.train.lr, world) if options.resume else None
    broadcast_tables(backend, world)
    checkpoint_path = run_dir / CHECKPOINT_NAME

    def save(loop_state: dict) -> None:
        def write() -> None:
            try:
                save_checkpoint(checkpoint_path, backend, loop_state, key)
            except OSError as exc:
                raise W2VError(f"cannot write checkpoint {checkpoint_path}: {exc}") from exc
            log.info(f"checkpoint: step {loop_state['stats']['steps']}, {checkpoint_path}")
        world.on_main(write)

    writer = SummaryWriter(log_dir=str(run_dir / "tb")) if world.is_main else None
    # evaluate=false means no evaluation at all: a run timed or scripted without it pays for none.
    on_eval = eval_while_training(backend, token_ids.tokenizer, counts, writer) \
        if cfg.evaluate and cfg.train.eval_every is not None else None
    log.info(f"training: {cfg.train.epochs} epochs of {n_tokens} words on {world.world_size} rank(s), "
             f"lr {cfg.train.lr:g} -> {cfg.train.min_lr:g}; "
             f"Ctrl-C / SIGTERM stops after the current step with a checkpoint")
    try:
        with StopRequest() as stop:
            stats = train(objective, cfg.train, cfg.vocab.sample, token_ids.ids, token_ids.sentences,
                          counts, backend, device,
                          on_log=lambda step, point: [writer.add_scalar(k, v, step) for k, v in point.items()],
                          show_progress=show_progress, world=world, resume=resume_loop,
                          token_range=rank_shard(cfg, token_ids.sentences, world),
                          checkpointing=Checkpointing(options.checkpoint, save, stop), on_eval=on_eval)
        if stats.interrupted:
            # lr falls linearly with the words done, so it tells how far the run got.
            done = (cfg.train.lr - stats.final_lr) / max(cfg.train.lr - cfg.train.min_lr, 1e-12)
            raise Interrupted(f"{stats.interrupted} received: stopped after step {stats.steps} (about {done:.0%} "
                              f"of the run); checkpoint {checkpoint_path}; continue with the same command "
                              f"plus train.resume=true", 128 + (stop.signal_number or signal.SIGINT))
        if stats.examples == 0:
            raise W2VError("no training examples: no line has two in-vocabulary words within the window; "
                           "give a corpus of sentences, or lower vocab.min_count")
        # A run resumed from a checkpoint taken at its very last step trains nothing more: no loss to judge.
        steps_before = resume_loop["stats"]["steps"] if resume_loop else 0
        if not np.isfinite(stats.final_loss) and stats.steps > steps_before:
            raise W2VError(f"training diverged (loss {stats.final_loss}); lower train.lr or train.batch_size")
        if not world.is_main:
            return {}
        try:
            metrics = export_and_evaluate(cfg, run_dir, backend, token_ids.tokenizer, counts, stats, writer)
        except OSError as exc:  # a full disk, a read-only dir: the atomic writes left no partial file
            raise W2VError(f"cannot write the vectors in {run_dir}: {exc}") from exc
    finally:
        if writer is not None:
            writer.close()

    metrics.update({
        "corpus_words": n_tokens, "epochs": cfg.train.epochs, "examples": stats.examples, "steps": stats.steps,
        "train_s": stats.train_seconds, "wall_s": time.perf_counter() - started,
        "raw_words": stats.raw_words, "effective_words": stats.effective_words,
        # Totals over every rank, divided by the training time (tokenisation excluded).
        "words_per_sec_raw": stats.raw_words / max(stats.train_seconds, 1e-9),
        "words_per_sec_effective": stats.effective_words / max(stats.train_seconds, 1e-9),
        "final_loss": stats.final_loss, "final_lr": stats.final_lr, "replaced_chars": token_ids.replaced_chars,
        "replaced_by_file": token_ids.replaced_by_file or {},
        "tokenize_cache_hit": token_ids.cache_hit, "tokenize_s": token_ids.build_seconds,
        # backend=fused under torchrun: table syncs, and the payload bytes one rank sent (w2v/table_sync.py).
        "syncs": stats.syncs, "sync_bytes_per_rank": stats.sync_bytes, "sync_s": stats.sync_seconds,
        "init_from": cfg.train.init_from, "model": cfg.model.name, "loss": cfg.model.loss, "backend": cfg.backend.name,
        "device": str(device), "world_size": world.world_size, "resumed": options.resume is not None,
    })
    try:
        write_json(run_dir / "metrics.json", metrics)
    except OSError as exc:
        raise W2VError(f"cannot write {run_dir / 'metrics.json'}: {exc}") from exc
    if checkpoint_path.exists():
        checkpoint_path.unlink()  # the run is complete: nothing left to resume
    log.info(f"trained {stats.raw_words} raw words in {stats.train_seconds:.1f}s "
             f"({metrics['words_per_sec_raw'] / 1e6:.2f}M words/s), final loss {stats.final_loss:.4f}")
    if stats.syncs:
        log.info(f"{stats.syncs} table syncs: {stats.sync_bytes / stats.syncs / 1e6:.2f} MB sent per rank per sync, "
                 f"{stats.sync_bytes / 1e6:.1f} MB in all, {stats.sync_seconds:.1f}s")
    if metrics.get("analogy_acc") is not None:
        log.info(figures_line(metrics))
    log.info(f"vectors: {run_dir / 'vectors.bin'}")
    return metrics


def eval_while_training(backend, tokenizer, counts: np.ndarray, writer) -> Callable[[int], None]:
    """on_eval for the trainer: the evaluation figures of the input table as it stands, to TensorBoard and the log."""
    evaluator = None

    def on_eval(step: int) -> None:
        nonlocal evaluator
        if evaluator is None:  # built on first use: a run too short to evaluate pays nothing
            evaluator = TableEvaluator(id_to_word(tokenizer), counts)
        started = time.perf_counter()
        figures = evaluator(backend.input_weights())
        for key in EVAL_FIGURES:
            writer.add_scalar(f"eval/{key}", figures[key], step)
        log.info(f"step {step}: {figures_line(figures)}  ({time.perf_counter() - started:.2f}s)")
    return on_eval


def figures_line(figures: dict) -> str:
    return (f"analogy {figures['analogy_acc']:.4f}  WS-353 {figures['ws353_spearman']:.4f}  "
            f"SimLex {figures['simlex_spearman']:.4f}")


def load_earlier(cfg: RunConfig) -> EarlierRun:
    """The earlier run of train.init_from (relative to where the run was launched), checked against this one."""
    path = to_absolute_path(cfg.train.init_from) if HydraConfig.initialized() else cfg.train.init_from
    earlier = load_earlier_run(path)
    if earlier.pre_tokenizer != cfg.vocab.pre_tokenizer:
        raise W2VError(f"train.init_from: {earlier.run_dir} split its words with vocab.pre_tokenizer="
                       f"{earlier.pre_tokenizer}, this run with {cfg.vocab.pre_tokenizer}; use the same")
    if "hs" in (earlier.loss, cfg.model.loss):
        # An hs output row belongs to an inner node of the Huffman tree, and a new vocabulary builds
        # another tree: the earlier output table would not mean what its row numbers say.
        raise W2VError(f"train.init_from continues negative-sampling runs only (model.loss=ns); "
                       f"{earlier.run_dir} used model.loss={earlier.loss}, this run model.loss={cfg.model.loss}")
    if earlier.dim != cfg.model.dim:
        raise W2VError(f"train.init_from: {earlier.run_dir} has {earlier.dim}-dimensional vectors, this run "
                       f"model.dim={cfg.model.dim}; set model.dim={earlier.dim}")
    return earlier


def resume_from(path: Path, backend, key: dict, lr: float, world: World) -> dict:
    """Load the checkpoint on rank 0 into its backend; every rank gets the loop state and optimiser state."""
    def load() -> tuple[dict, dict | None]:
        payload = load_checkpoint(path)
        check_run_key(payload["run_key"], key, path)
        restore_backend(backend, payload, lr)
        log.info(f"resuming from {path}: step {payload['loop']['stats']['steps']}, "
                 f"epoch {payload['loop']['epoch'] + 1}")
        return payload["loop"], payload.get("optimizer")

    loop, optimizer_state = world.broadcast_object(world.on_main(load))
    if not world.is_main and optimizer_state is not None:
        backend.restore_optimizer(optimizer_state, lr)
    return loop


def export_and_evaluate(cfg: RunConfig, run_dir: Path, backend, tokenizer, counts: np.ndarray, stats,
                        writer) -> dict:
    """Write vectors.bin (and vectors.txt), evaluate them, log to TensorBoard; returns the quality metrics."""
    words = id_to_word(tokenizer)
    vectors = backend.input_weights().float().cpu().numpy()
    exported = write_word2vec(run_dir / "vectors.bin", words, vectors, counts, binary=True)
    if cfg.export.text:
        write_word2vec(run_dir / "vectors.txt", words, vectors, counts, binary=False)
    quality = {}
    if cfg.evaluate:
        from .evaluate import evaluate_vectors  # imports gensim (about a second): only when asked to evaluate

        quality = evaluate_vectors(to_keyed_vectors(words, vectors, counts))
    for key in EVAL_FIGURES:
        if key in quality:
            writer.add_scalar(f"eval/{key}", quality[key], stats.steps)
    if cfg.export.tables:  # what a later train.init_from continues from
        save_tables(run_dir / TABLES_NAME, backend.input_weights(), backend.output_weights(), counts, cfg.model.loss)
    write_tensorboard_embedding(writer, words, vectors, counts, cfg.export.projector_words)
    return {"vocab_size": exported, **{k: quality.get(k) for k in EVAL_FIGURES}}


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    world = World()
    try:
        with user_errors():
            raw = OmegaConf.to_container(cfg, resolve=True)
            run_cfg = parse_config(raw)
            options = RunOptions.from_config(raw, run_dir)
            world = start_world(resolve_device(run_cfg.train.device).type)
            if not world.is_main:
                log.setLevel(logging.WARNING)  # rank 0 tells the story
            run(run_cfg, run_dir, show_progress=sys.stderr.isatty() or os.environ.get("W2V_PROGRESS") == "1",
                options=options, world=world, resolved_config=OmegaConf.to_yaml(cfg, resolve=True))
    except KeyboardInterrupt:
        print("stopped: interrupted before a checkpoint could be written; nothing to resume", file=sys.stderr)
        sys.exit(130)
    finally:
        world.close()


def check_group_choices(argv: list[str]) -> None:
    """Reject an unknown model/backend/data/phrases choice in one line (Hydra's own message spans many)."""
    for arg in argv:
        key, _, value = arg.lstrip("+~").partition("=")
        if key in ("model", "backend", "data", "phrases") and value and value not in group_choices(key):
            raise W2VError(f"unknown {key} {value!r}; valid: {', '.join(group_choices(key))}")


def torchrun_overrides(argv: list[str]) -> list[str]:
    """Under torchrun: require one run dir for all ranks, and keep ranks > 0 from writing in it."""
    if launched_world_size() == 1:
        return []
    if not any(arg.startswith("hydra.run.dir=") for arg in argv):
        raise W2VError("under torchrun every rank must use the same run dir: pass hydra.run.dir=DIR")
    if launched_rank() > 0:  # no .hydra/ copy and no log file from the other ranks
        return ["hydra.output_subdir=null", "hydra/job_logging=stdout"]
    return []


def check_command_line(argv: list[str]) -> list[str]:
    """Refuse what can be refused before Hydra starts; returns the overrides torchrun's ranks add."""
    check_group_choices(argv)
    refuse_before_hydra(argv)
    return torchrun_overrides(argv)


def main() -> None:
    run_hydra_app(hydra_main, check_command_line)


if __name__ == "__main__":
    main()
