"""Replay gensim's own hierarchical-softmax skip-gram training through w2v's C kernel, update for update.

    python scripts/replay_gensim_hs.py --corpus data/big/tech-clean.txt --seeds 2
    python scripts/replay_gensim_hs.py --max-lines 2000 --epochs 1 --exact     # the bundled sample, quick

gensim trains with 1 worker on w2v's Huffman tree (scripts/bench_hs.py's hand_tree_to_gensim) while this
script records each job it trains: its sentences, its alpha, and gensim's RandomState before it. From
those, the job's subsampling (gensim's 48-bit LCG against sample_int) and reduced windows (one randint
call) are drawn again exactly, and w2v's kernel trains the same kept tokens, windows, alphas and starting
vectors, one job per chunk, one thread. The rows:
- gensim: gensim's own vectors;
- w2v kernel: the shipped kernel (skip-gram hs trains the context's path from the centre, the reverse of
  gensim's pair order, and interpolates its sigmoid table);
- w2v kernel, node subsampling: the same with model.hs_node_subsampling (w2v/huffman.py).
--exact adds a copy of the kernel built with gensim's pair order and sigmoid table (two substitutions in
sgns.c, checked to apply) and prints how far its tables end from gensim's: about 1e-6 on average, the
rounding of float32 sums done in another order. So everything but the stream is the same update, and a
quality gap between the two systems on the same stream and tree is not in w2v's kernel.
Prints a table and writes replay_gensim_hs.md / .csv to --out.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_hs import hand_tree_to_gensim, hs_config  # noqa: E402
from compare_gensim import gensim_sentences  # noqa: E402

import w2v.kernels as kernels  # noqa: E402
from w2v.atomic import write_report  # noqa: E402
from w2v.batches import noise_distribution  # noqa: E402
from w2v.config import TrainConfig, W2VError, parse_config  # noqa: E402
from w2v.corpus import open_corpus  # noqa: E402
from w2v.evaluate import evaluate_vectors  # noqa: E402
from w2v.export import to_keyed_vectors  # noqa: E402
from w2v.huffman import build_huffman  # noqa: E402
from w2v.token_ids import load_or_build  # noqa: E402
from w2v.vocab import id_to_word  # noqa: E402

METRICS = ("analogy_acc", "ws353_spearman", "simlex_spearman")
LCG_MASK = (1 << 48) - 1
# gensim's order for skip-gram hs: the context's input row against the centre's path (word2vec.c's too),
# and its sigmoid: a 1000-entry table over [-6, 6), read at int((x + 6) * 83) without interpolation.
GENSIM_ORDER = [
    ("""                    loss += train_path(hidden, work, job->out, dim, job->tree, job->ids[j], lr, job->out_marks, &hot);
                    axpy(hidden, 1.0f, work, dim);
                    mark_row(job->in_marks, job->ids[i]);""",
     """                    float *context = job->in + job->ids[j] * dim;
                    loss += train_path(context, work, job->out, dim, job->tree, job->ids[i], lr, job->out_marks, &hot);
                    axpy(context, 1.0f, work, dim);
                    mark_row(job->in_marks, job->ids[j]);"""),
    ("""        float g = (1.0f - (float)code[k] - sigmoid(score)) * lr;""",
     """        float table_x = (float)(int)((score + 6.0f) * 83.0f) * 12.0f / 1000.0f - 6.0f;
        float g = (1.0f - (float)code[k] - 1.0f / (1.0f + expf(-table_x))) * lr;"""),
]


def gensim_order_kernel(folder: Path):
    """The C kernel built from sgns.c with GENSIM_ORDER's substitutions (each must apply exactly once)."""
    source = kernels.SOURCE.read_text()
    for old, new in GENSIM_ORDER:
        if source.count(old) != 1:
            raise W2VError(f"sgns.c has changed: cannot apply gensim's order at {old.strip()[:60]!r}")
        source = source.replace(old, new)
    path = folder / "sgns_gensim_order.c"
    path.write_text(source)
    shipped, kernels.SOURCE = kernels.SOURCE, path
    try:
        return kernels.load_sgns()
    finally:
        kernels.SOURCE = shipped


def record_gensim(sentences, token_ids, args, seed: int) -> dict:
    """Train gensim (1 worker, w2v's tree) and record its jobs; returns its vectors, figures and the record."""
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=args.dim, window=args.window, hs=1, negative=0, sample=args.sample,
                     min_count=args.min_count, sg=1, alpha=0.025, min_alpha=0.0001, workers=1, seed=seed)
    model.build_vocab(sentences)
    hand_tree_to_gensim(model, token_ids)
    start_vectors = model.wv.vectors.copy()
    jobs = []
    train_job = model._do_train_job

    def recording(job_sentences, alpha, inits):
        jobs.append((len(job_sentences), float(alpha), model.random.get_state()))
        return train_job(job_sentences, alpha, inits)

    model._do_train_job = recording  # one worker: jobs run in the order they are made
    started = time.perf_counter()
    model.train(sentences, total_words=model.corpus_total_words, epochs=args.epochs)
    return {"model": model, "start": start_vectors, "jobs": jobs, "seconds": time.perf_counter() - started,
            "sample_int": np.asarray(model.wv.expandos["sample_int"], dtype=np.uint64)}


def replay_job(sentence_ids: list[np.ndarray], state, sample_int: np.ndarray, sample: float, window: int):
    """gensim's draws for one job, again: (kept ids, their sentence numbers, reduced windows), gensim indices."""
    rs = np.random.RandomState()
    rs.set_state(state)
    kept, sentence = [], []
    if sample:
        lcg = (2 ** 24) * rs.randint(0, 2 ** 24) + rs.randint(0, 2 ** 24)  # gensim's init_w2v_config
    for number, ids in enumerate(sentence_ids):
        for word in ids.tolist():
            if sample:
                draw, lcg = lcg >> 16, (lcg * 25214903917 + 11) & LCG_MASK
                if sample_int[word] < draw:
                    continue
            kept.append(word)
            sentence.append(number)
    reduced = rs.randint(0, window, len(kept))  # gensim draws every kept token's window in one call
    return np.asarray(kept, np.int64), np.asarray(sentence, np.int64), (window - reduced).astype(np.int64)


def replay(kernel, record: dict, sentence_ids, gensim_to_w2v: np.ndarray, counts, tree, args) -> torch.Tensor:
    """w2v's kernel over the recorded jobs from gensim's starting vectors; returns the input table (w2v ids)."""
    vocab = len(counts)
    in_table = torch.zeros(vocab, args.dim)
    in_table[torch.as_tensor(gensim_to_w2v)] = torch.as_tensor(record["start"])
    out_table = torch.zeros(vocab, args.dim)
    alias = kernel.build_alias(noise_distribution(counts))
    cursor = 0
    for n_sentences, alpha, state in record["jobs"]:
        job = [sentence_ids[(cursor + k) % len(sentence_ids)] for k in range(n_sentences)]
        cursor = (cursor + n_sentences) % len(sentence_ids)
        kept, sentence, reduced = replay_job(job, state, record["sample_int"], args.sample, args.window)
        if len(kept):
            kernel.train_chunk(False, in_table, out_table, gensim_to_w2v[kept], sentence, reduced, 5, alias,
                               alpha, alpha, 1, 1, tree=tree)
    return in_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="sample", help="a text file, or `sample` for the bundled one")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--max-lines", type=int, default=None)
    parser.add_argument("--exact", action="store_true", help="also replay with gensim's pair order and sigmoid")
    parser.add_argument("--cache-dir", default="data/cache")
    parser.add_argument("--out", default="outputs/replay_gensim_hs")
    args = parser.parse_args(argv)
    args.corpus = [] if args.corpus == "sample" else [args.corpus]
    args.negative, args.init_range, args.batch_size, args.device, args.workers, args.seed, args.lr = \
        5, 1.0, 1024, "cpu", 1, 1, TrainConfig.lr
    try:
        cfg = parse_config(hs_config(args, "skipgram"))
        token_ids = load_or_build(open_corpus(cfg.data, Path(args.cache_dir)), cfg.vocab, Path(args.cache_dir),
                                  show_progress=False, log=lambda msg: None)
    except W2VError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = np.asarray(token_ids.counts)
    words = id_to_word(token_ids.tokenizer)
    sentences = gensim_sentences(token_ids)
    plain, subsampled = build_huffman(counts), build_huffman(counts, args.sample)
    shipped = kernels.load_sgns()
    if shipped is None:
        print("error: the C kernel did not build (see the warning above)", file=sys.stderr)
        return 2
    rows, sentence_ids = [], None
    w2v_id = {word: i for i, word in enumerate(words)}
    with tempfile.TemporaryDirectory() as folder:
        exact = gensim_order_kernel(Path(folder)) if args.exact else None
        for seed in range(1, args.seeds + 1):
            record = record_gensim(sentences, token_ids, args, seed)
            gensim_model = record["model"]
            if sentence_ids is None:  # gensim numbers its words by count, the same for every seed
                gensim_to_w2v = np.asarray([w2v_id[w] for w in gensim_model.wv.index_to_key], dtype=np.int64)
                gensim_index = {w: g for g, w in enumerate(gensim_model.wv.index_to_key)}
                sentence_ids = [np.asarray([gensim_index[w] for w in s], dtype=np.int64) for s in sentences]
            runs = [("gensim, 1 worker, w2v's tree", None, None), ("w2v kernel", shipped, plain),
                    ("w2v kernel, node subsampling", shipped, subsampled)]
            if exact is not None:
                runs.insert(1, ("w2v kernel in gensim's order", exact, plain))
            for system, kernel, tree in runs:
                started = time.perf_counter()
                if kernel is None:
                    vectors, seconds, difference = gensim_model.wv.vectors, record["seconds"], ""
                else:
                    table = replay(kernel, record, sentence_ids, gensim_to_w2v, counts, tree, args)
                    vectors = table[torch.as_tensor(gensim_to_w2v)].numpy()
                    seconds = time.perf_counter() - started
                    gap = np.abs(vectors - gensim_model.wv.vectors)
                    difference = f"{gap.mean():.2e} (max {gap.max():.2e})"
                kv = to_keyed_vectors(list(gensim_model.wv.index_to_key), vectors,
                                      counts[gensim_to_w2v])
                quality = evaluate_vectors(kv)
                row = {"seed": seed, "system": system, "seconds": seconds, "table_gap": difference,
                       **{k: quality[k] for k in METRICS}}
                rows.append(row)
                print(json.dumps(row), flush=True)
    name = Path(args.corpus[0]).name if args.corpus else "sample"
    lines = [f"gensim's hs skip-gram jobs replayed through w2v's C kernel: {name}, {args.epochs} epochs, dim {args.dim}, "
             f"window {args.window}, sample {args.sample}, 1 thread, w2v's tree, mean ± sd of {args.seeds} seed(s)",
             "", "| system | analogy | WS-353 | SimLex | mean abs table difference from gensim (seed 1) |",
             "|---|---:|---:|---:|---|"]
    for system in dict.fromkeys(r["system"] for r in rows):
        group = [r for r in rows if r["system"] == system]
        cells = []
        for k in METRICS:
            values = [r[k] for r in group]
            sd = np.std(values, ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{np.mean(values):.4f} ± {sd:.4f}")
        lines.append(f"| {system} | {' | '.join(cells)} | {group[0]['table_gap'] or '-'} |")
    print("\n" + "\n".join(lines))
    write_report(args.out, "replay_gensim_hs", "\n".join(lines), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
