"""`python -m w2v.train`: the whole pipeline, configured by Hydra (conf/config.yaml).

corpus -> vocabulary + token-id cache -> backend -> training loop -> vectors.bin,
metrics.json, TensorBoard events, all in Hydra's run dir (hydra.run.dir=... moves it).
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from .atomic import write_json
from .backends import init_tables, make_backend
from .config import RunConfig, W2VError, group_choices, parse_config
from .corpus import open_corpus
from .evaluate import evaluate_vectors
from .export import save_vectors, to_keyed_vectors
from .memory import check_fits
from .token_ids import load_or_build
from .trainer import train
from .vocab import id_to_word

log = logging.getLogger("w2v")


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when present, else cpu; cuda without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise W2VError("train.device=cuda but no CUDA device is available; use train.device=cpu or auto")
    return torch.device(name)


def write_tensorboard_embedding(writer, words: list[str], vectors: np.ndarray, counts: np.ndarray, top: int):
    """The projector view of the `top` most frequent words."""
    if top <= 0:
        return
    order = [i for i in np.argsort(-counts, kind="stable") if counts[i] > 0][:top]
    writer.add_embedding(torch.from_numpy(vectors[order]), metadata=[words[i] for i in order],
                         tag="word_vectors")


def run(cfg: RunConfig, run_dir: Path, show_progress: bool = True) -> dict:
    """Run the pipeline; returns the metrics written to run_dir/metrics.json."""
    from torch.utils.tensorboard import SummaryWriter

    started = time.perf_counter()
    device = resolve_device(cfg.train.device)
    torch.set_num_threads(cfg.train.threads or os.cpu_count() or 1)
    torch.manual_seed(cfg.train.seed)
    cache_dir = Path(to_absolute_path(cfg.cache_dir)) if HydraConfig.initialized() else Path(cfg.cache_dir)

    corpus = open_corpus(cfg.data, cache_dir)
    token_ids = load_or_build(corpus, cfg.vocab, cache_dir, show_progress=show_progress, log=log.info)
    if token_ids.replaced_chars:
        log.warning(f"replaced {token_ids.replaced_chars} undecodable byte sequences with U+FFFD (dropped)")
    vocab_size, n_tokens = token_ids.vocab_size, len(token_ids.ids)
    log.info(f"corpus: {n_tokens} in-vocabulary tokens, {len(token_ids.sentences) - 1} lines, "
             f"vocabulary {vocab_size - 1} words; device {device}, backend {cfg.backend.name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(token_ids.tokenizer_path, run_dir / ".tokenizer.json.tmp")
    os.replace(run_dir / ".tokenizer.json.tmp", run_dir / "tokenizer.json")

    check_fits(cfg.backend.name, vocab_size, cfg.model.dim, cfg.model.name, cfg.train.batch_size,
               cfg.model.window, cfg.model.negative, device)
    input_init, output_init = init_tables(vocab_size, cfg.model.dim, cfg.train.seed)
    backend = make_backend(cfg.backend.name, input_init, output_init, device)

    writer = SummaryWriter(log_dir=str(run_dir / "tb"))
    try:
        stats = train(cfg, token_ids.ids, token_ids.sentences, token_ids.counts, backend, device,
                      on_log=lambda step, point: [writer.add_scalar(k, v, step) for k, v in point.items()],
                      show_progress=show_progress)
        if not np.isfinite(stats.final_loss):
            raise W2VError(f"training diverged (loss {stats.final_loss}); lower train.lr or train.batch_size")

        words = id_to_word(token_ids.tokenizer)
        vectors = backend.input_weights().float().cpu().numpy()
        kv = to_keyed_vectors(words, vectors, token_ids.counts)
        save_vectors(kv, run_dir / "vectors.bin", binary=True)
        if cfg.export.text:
            save_vectors(kv, run_dir / "vectors.txt", binary=False)
        quality = evaluate_vectors(kv) if cfg.evaluate else {}
        for key in ("analogy_acc", "ws353_spearman", "simlex_spearman"):
            if key in quality:
                writer.add_scalar(f"eval/{key}", quality[key], stats.steps)
        write_tensorboard_embedding(writer, words, vectors, token_ids.counts, cfg.export.projector_words)
    finally:
        writer.close()

    metrics = {
        "raw_words": stats.raw_words,
        "effective_words": stats.effective_words,
        "corpus_words": n_tokens,
        "epochs": cfg.train.epochs,
        "vocab_size": len(kv),
        "examples": stats.examples,
        "steps": stats.steps,
        "train_s": stats.train_seconds,
        "wall_s": time.perf_counter() - started,
        "words_per_sec_raw": stats.raw_words / max(stats.train_seconds, 1e-9),
        "words_per_sec_effective": stats.effective_words / max(stats.train_seconds, 1e-9),
        "final_loss": stats.final_loss,
        "replaced_chars": token_ids.replaced_chars,
        "tokenize_cache_hit": token_ids.cache_hit,
        "model": cfg.model.name,
        "backend": cfg.backend.name,
        "device": str(device),
        "world_size": 1,
        **{k: quality.get(k) for k in ("analogy_acc", "ws353_spearman", "simlex_spearman")},
    }
    write_json(run_dir / "metrics.json", metrics)
    log.info(f"trained {stats.raw_words} raw words in {stats.train_seconds:.1f}s "
             f"({metrics['words_per_sec_raw'] / 1e6:.2f}M words/s), final loss {stats.final_loss:.4f}")
    if quality:
        log.info(f"analogy {quality['analogy_acc']:.4f}  WS-353 {quality['ws353_spearman']:.4f}  "
                 f"SimLex {quality['simlex_spearman']:.4f}")
    log.info(f"vectors: {run_dir / 'vectors.bin'}")
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        run_cfg = parse_config(OmegaConf.to_container(cfg, resolve=True))
        with open(run_dir / "config.resolved.yaml", "w") as f:
            f.write(OmegaConf.to_yaml(cfg, resolve=True))
        run(run_cfg, run_dir, show_progress=sys.stderr.isatty() or os.environ.get("W2V_PROGRESS") == "1")
    except W2VError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def check_group_choices(argv: list[str]) -> None:
    """Reject an unknown model/backend/data choice in one line (Hydra's own message spans many)."""
    for arg in argv:
        key, _, value = arg.lstrip("+~").partition("=")
        if key in ("model", "backend", "data") and value and value not in group_choices(key):
            raise W2VError(f"unknown {key} {value!r}; valid: {', '.join(group_choices(key))}")


def main() -> None:
    try:
        check_group_choices(sys.argv[1:])
    except W2VError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    hydra_main()


if __name__ == "__main__":
    main()
