"""One VQA run: data -> question vocabulary + embedding -> model -> train -> evaluate -> outputs.

Writes into run_dir: metrics.json, model.pt (state dict + vocabulary + answers +
config) and TensorBoard events under tb/.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..atomic import atomic_path, write_json
from ..cli import resolve_device
from ..errors import W2VError
from .config import VQARunConfig
from .data import VQADataset
from .embeddings import (build_vocab, load_tokenizer, load_vectors, make_embedding, question_words,
                         resolve_vectors_paths)
from .model import VQAModel
from .scene_cache import load_or_generate
from .synonyms import paraphrase_only_words
from .training import encode_split, evaluate, train_model
from .vqa2 import load_vqa2, vqa_soft_score

log = logging.getLogger("w2v.vqa")


def load_dataset(cfg: VQARunConfig, cache_dir: Path | None) -> VQADataset:
    if cfg.data_kind == "vqa2":
        return load_vqa2(cfg.vqa2)
    return load_or_generate(cfg.scenes, cache_dir, log=log.warning)


def vectors_provenance(vectors_path: Path) -> dict:
    """What produced the vectors: the training run's metrics and config, when they sit beside them."""
    run_dir = vectors_path.parent
    info: dict = {"vectors": str(vectors_path)}
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        keep = ("corpus_words", "vocab_size", "epochs", "model", "backend", "analogy_acc", "ws353_spearman",
                "simlex_spearman", "train_s")
        info["training_metrics"] = {k: v for k, v in json.loads(metrics.read_text()).items() if k in keep}
    resolved = run_dir / "config.resolved.yaml"
    if resolved.is_file():
        import yaml

        config = yaml.safe_load(resolved.read_text()) or {}
        info["training_config"] = {k: config[k] for k in ("model", "backend", "data", "vocab", "train") if k in config}
    return info


def soft_accuracy(predictions: list[int], human_answers: list[list[str]], answer_names: list[str]) -> float | None:
    """Mean official VQA accuracy over the questions with annotators' answers; None when none has them."""
    scores = [vqa_soft_score(answer_names[p], humans) for p, humans in zip(predictions, human_answers) if humans]
    return sum(scores) / len(scores) if scores else None


def run_vqa(cfg: VQARunConfig, run_dir: Path, cache_dir: Path | None = None) -> dict:
    """Train and evaluate; returns the metrics written to run_dir/metrics.json."""
    from torch.utils.tensorboard import SummaryWriter

    started = time.perf_counter()
    device = resolve_device(cfg.train.device)
    torch.set_num_threads(cfg.train.threads or os.cpu_count() or 1)
    torch.manual_seed(cfg.train.seed)
    generator = torch.Generator().manual_seed(cfg.train.seed)

    e = cfg.embedding
    vectors_path = tokenizer_path = kv = None
    if e.vectors:
        vectors_path, tokenizer_path = resolve_vectors_paths(e.vectors, e.tokenizer)
    tokenizer = load_tokenizer(tokenizer_path)
    if vectors_path is not None:
        kv = load_vectors(vectors_path)  # init=random still takes its size, for a like-for-like comparison

    dataset = load_dataset(cfg, cache_dir)
    tokens = {name: [question_words(tokenizer, q) for q in split.questions] for name, split in dataset.splits.items()}
    known = set(kv.key_to_index) if (kv is not None and e.init == "pretrained") else None
    vocab = build_vocab((t for name in dataset.splits for t in tokens[name]), known)
    embedding = make_embedding(vocab, kv if e.init == "pretrained" else None,
                               kv.vector_size if kv is not None else e.dim, e.freeze, e.normalize, generator,
                               center=e.center)
    first_split = dataset.splits["train"]
    model = VQAModel(embedding, cfg.model, len(dataset.answer_names), dataset.image_kind,
                     tuple(first_split.images.shape[1:])).to(device)
    pretrained_before = None if embedding.pretrained is None else embedding.pretrained.weight.detach().clone()

    encoded = {name: encode_split(split, [vocab.encode(t) for t in tokens[name]])
               for name, split in dataset.splits.items()}
    run_dir.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(log_dir=str(run_dir / "tb"))
    try:
        stats = train_model(model, encoded["train"], cfg.train, device,
                            on_step=lambda step, point: [writer.add_scalar(k, v, step) for k, v in point.items()])
        if stats["final_loss"] != stats["final_loss"]:
            raise W2VError("training diverged (loss is NaN); lower train.lr")
        results = {name: evaluate(model, encoded[name], device) for name in dataset.eval_splits}
        for name, result in results.items():
            soft = soft_accuracy(result["predictions"], dataset.splits[name].human_answers, dataset.answer_names)
            if soft is not None:
                result["vqa_soft_accuracy"] = soft
            for key in ("accuracy", "vqa_soft_accuracy"):
                if key in result:
                    writer.add_scalar(f"eval/{name}_{key}", result[key], stats["steps"])
    finally:
        writer.close()

    model = model.cpu()
    with atomic_path(run_dir / "model.pt") as tmp:
        torch.save({"state_dict": model.state_dict(), "words": vocab.words, "n_extra": vocab.n_extra,
                    "answers": dataset.answer_names, "config": asdict(cfg)}, tmp)

    train_words = {t for toks in tokens["train"] for t in toks}
    metrics = {
        "data": dataset.source,
        "embedding_init": e.init,
        "embedding_freeze": e.freeze,
        "embedding_dim": embedding.dim,
        "vocab_words": len(vocab.words) - 2,
        "pretrained_rows": 0 if embedding.pretrained is None else int(embedding.pretrained.num_embeddings),
        "oov_words": len(vocab.oov_words),
        "oov_list": vocab.oov_words,
        "oov_in_train": sum(w in train_words for w in vocab.oov_words),
        "pretrained_row_max_change": (None if pretrained_before is None else
                                      float((embedding.pretrained.weight.detach() - pretrained_before).abs().max())),
        **{f"{name}_accuracy": r["accuracy"] for name, r in results.items()},
        **{f"{name}_vqa_soft_accuracy": r["vqa_soft_accuracy"] for name, r in results.items()
           if "vqa_soft_accuracy" in r},
        "by_kind": {name: r["by_kind"] for name, r in results.items()},
        "eval_questions": {name: r["n"] for name, r in results.items()},
        "train_questions": len(dataset.splits["train"]),
        "epochs": cfg.train.epochs,
        "seed": cfg.train.seed,
        "final_loss": stats["final_loss"],
        "steps": stats["steps"],
        "train_s": stats["train_s"],
        "wall_s": time.perf_counter() - started,
        "device": str(device),
    }
    if cfg.data_kind == "scenes":
        metrics["paraphrase_words_oov"] = sorted(w for w in paraphrase_only_words() if w in vocab.oov_words)
    if vectors_path is not None:
        metrics["vectors"] = vectors_provenance(vectors_path)
    write_json(run_dir / "metrics.json", metrics)
    summary = "  ".join(f"{name} {r['accuracy']:.3f}" + (f" (VQA soft accuracy {r['vqa_soft_accuracy']:.3f})"
                                                          if "vqa_soft_accuracy" in r else "")
                        for name, r in results.items())
    log.info(f"{e.init}{' frozen' if e.freeze else ''}: {summary}; {len(vocab.oov_words)} OOV question words; "
             f"{stats['train_s']:.0f}s training")
    return metrics
