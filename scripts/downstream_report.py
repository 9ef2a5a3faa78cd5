"""What pretrained word vectors buy a VQA-style classifier: random vs frozen vs fine-tuned.

    python scripts/downstream_report.py                     # defaults: trains the vectors too
    python scripts/downstream_report.py --vectors outputs/RUN   # reuse vectors from python -m w2v.train
    python scripts/downstream_report.py --corpus sample     # vectors from the small bundled sample instead

Without --vectors it first trains word2vec with `python -m w2v.train` on
--corpus: by default data/big/gcide.txt (the GCIDE dictionary, ~5.7M words, built
by scripts/make_big_corpus.py) when it exists, else the bundled sample (gensim's
Wikipedia sample + Lee corpus, ~600k words), with a printed note. Then it
runs `python -m w2v.vqa` on the synthetic scenes for every mode x seed
(random init; pretrained, frozen; pretrained, fine-tuned), --jobs at a time,
and reports mean +- std accuracy on `test` (training wording) and
`test_paraphrase` (synonyms no training question uses). Writes a CSV of every
run, a markdown table and a PNG bar chart (default: docs/data/downstream.*,
docs/img/downstream.png). All modes tokenise with the vectors' tokenizer.json
and use the vectors' dimension, so they differ only in the embedding's rows.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from w2v.atomic import atomic_path  # noqa: E402

MODES = {  # name -> overrides of python -m w2v.vqa
    "random": ["embedding.init=random"],
    "pretrained-frozen": ["embedding.init=pretrained", "embedding.freeze=true"],
    "pretrained-finetuned": ["embedding.init=pretrained", "embedding.freeze=false"],
}
SPLITS = ("test", "test_paraphrase")


def offline_env(threads: int) -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", CUDA_VISIBLE_DEVICES="",
                OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")


def run(cmd: list[str], env: dict, what: str) -> None:
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        sys.exit(f"error: {what} failed (exit {done.returncode}):\n  " + "\n  ".join(tail))


def default_backend() -> str:
    """The fused CPU kernel when this checkout has it (seconds instead of minutes), else dense."""
    return "fused" if (REPO / "w2v" / "conf" / "backend" / "fused.yaml").is_file() else "dense"


SAMPLE = "sample"  # --corpus value for the small corpus bundled with gensim (w2v/conf/data/sample.yaml)
BIG_CORPUS = REPO / "data" / "big" / "gcide.txt"  # made by scripts/make_big_corpus.py
FILE_CORPUS_EPOCHS = 10  # 10 x 5.7M GCIDE words: ~70 s with the fused backend on 2 cores; SimLex 0.35 vs 0.24 at 3


def default_corpus() -> str:
    """The big offline corpus when it has been built, else the bundled sample (with a note why)."""
    if BIG_CORPUS.is_file():
        return str(BIG_CORPUS)
    print(f"note: {BIG_CORPUS.relative_to(REPO)} not found (build it with scripts/make_big_corpus.py); "
          "training the vectors on the small bundled sample corpus, which lacks many paraphrase synonyms")
    return SAMPLE


def train_vectors(out: Path, threads: int, backend: str, corpus: str, epochs: int | None) -> Path:
    """word2vec on `corpus` (a text file, or SAMPLE) with the project's default settings but `epochs`."""
    overrides = [f"backend={backend}", "export.projector_words=0"]
    if corpus == SAMPLE:
        name = "sample"
    else:
        path = Path(corpus).resolve()
        if not path.is_file():
            sys.exit(f"error: --corpus {corpus}: no such file")
        name = path.stem
        overrides += ["data=files", f"data.paths=[{path}]"]
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
        name += f"-e{epochs}"
    # The corpus and epochs are in the dir name, so a reused dir never holds other vectors.
    run_dir = out / f"vectors-{backend}-{name}"
    if (run_dir / "vectors.bin").is_file():
        print(f"vectors: reusing {run_dir}")
        return run_dir
    print(f"vectors: training python -m w2v.train {' '.join(overrides)} ...", flush=True)
    started = time.perf_counter()
    run([sys.executable, "-m", "w2v.train", f"hydra.run.dir={run_dir}", "overwrite=true", *overrides],
        offline_env(threads), "python -m w2v.train")
    print(f"vectors: trained in {time.perf_counter() - started:.0f}s")
    return run_dir


def vqa_overrides(args) -> list[str]:
    return [f"data.scenes.train={args.train}", f"data.scenes.test={args.test}",
            f"data.scenes.test_paraphrase={args.test}", f"data.scenes.seed={args.data_seed}",
            f"train.epochs={args.epochs}", f"train.threads={args.threads}", "train.device=cpu",
            f"cache_dir={args.out / 'cache'}"]


def one_run(mode: str, seed: int, vectors: Path, args) -> dict:
    run_dir = args.out / "runs" / f"{mode}-seed{seed}"
    overrides = [f"embedding.vectors={vectors}", f"train.seed={seed}", *MODES[mode], *vqa_overrides(args)]
    done = run_dir / "overrides.txt"
    if not (args.reuse and done.is_file() and done.read_text() == "\n".join(overrides)
            and (run_dir / "metrics.json").is_file()):
        run([sys.executable, "-m", "w2v.vqa", f"hydra.run.dir={run_dir}", "overwrite=true", *overrides],
            offline_env(args.threads), f"{mode} seed {seed}")
        done.write_text("\n".join(overrides))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"  {mode:21s} seed {seed}: test {metrics['test_accuracy']:.3f}  "
          f"test_paraphrase {metrics['test_paraphrase_accuracy']:.3f}  ({metrics['train_s']:.0f}s)", flush=True)
    return {"mode": mode, "seed": seed, **{s: metrics[f"{s}_accuracy"] for s in SPLITS},
            "oov_words": metrics["oov_words"], "paraphrase_words_oov": len(metrics.get("paraphrase_words_oov", [])),
            "frozen_rows_changed": metrics["pretrained_row_max_change"], "train_s": metrics["train_s"],
            "by_kind": metrics["by_kind"]}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(rows: list[dict]) -> dict:
    """mode -> {split: (mean, std)} in percent."""
    return {mode: {s: mean_std([100 * r[s] for r in rows if r["mode"] == mode]) for s in SPLITS} for mode in MODES}


def markdown(summary: dict, rows: list[dict], n_seeds: int) -> str:
    lines = [f"| embedding | test (%) | test_paraphrase (%) | seeds |", "|---|---|---|---|"]
    for mode, by_split in summary.items():
        cells = [f"{m:.1f} ± {s:.1f}" for m, s in (by_split[x] for x in SPLITS)]
        lines.append(f"| {mode} | {cells[0]} | {cells[1]} | {n_seeds} |")
    kinds = sorted(rows[0]["by_kind"]["test_paraphrase"])
    lines += ["", "test_paraphrase accuracy (%) by question type, mean over seeds:", "",
              "| embedding | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for mode in MODES:
        means = [statistics.fmean(100 * r["by_kind"]["test_paraphrase"][k] for r in rows if r["mode"] == mode)
                 for k in kinds]
        lines.append(f"| {mode} | " + " | ".join(f"{m:.1f}" for m in means) + " |")
    return "\n".join(lines) + "\n"


def provenance(vectors: Path) -> str:
    metrics_path, config_path = vectors / "metrics.json", vectors / "config.resolved.yaml"
    if not metrics_path.is_file():
        return f"vectors from {vectors} (no metrics.json beside them: provenance unknown)"
    m = json.loads(metrics_path.read_text())
    settings = ""
    if config_path.is_file():
        import yaml

        c = yaml.safe_load(config_path.read_text())
        data = c["data"]["kind"]
        if data == "files":
            data += " " + ",".join(Path(p).name for p in c["data"].get("paths", []))
        settings = (f"{c['model']['name']}, dim {c['model']['dim']}, window {c['model']['window']}, negative "
                    f"{c['model']['negative']}, min_count {c['vocab']['min_count']}, {c['train']['epochs']} epochs, "
                    f"data={data}, backend {c['backend']['name']}")
    shown = vectors.relative_to(REPO) if vectors.is_relative_to(REPO) else vectors  # no home paths in docs
    return (f"vectors: {shown} -- python -m w2v.train ({settings}); corpus {m.get('corpus_words')} tokens, "
            f"vocabulary {m.get('vocab_size')} words; WS-353 {m.get('ws353_spearman', 0):.3f}, "
            f"SimLex {m.get('simlex_spearman', 0):.3f}, analogy {m.get('analogy_acc', 0):.3f}")


def synonym_check(vectors: Path) -> tuple[str, list[str]]:
    """How many paraphrase synonyms the vectors know, and how many lie nearest their own training word.

    Within each category (shapes, colours, sizes, attribute nouns) a known synonym
    counts as "near" when, of that category's training words, its own has the highest
    cosine similarity, measured on centred vectors as the classifier sees them
    (embedding.center=true). This only describes the vectors; the lists are fixed in code.
    """
    import numpy as np

    from gensim.models import KeyedVectors
    from w2v.vqa.synonyms import ATTRIBUTE_WORDS, COLOUR_WORDS, SHAPE_WORDS, SIZE_WORDS

    kv = KeyedVectors.load_word2vec_format(str(vectors / "vectors.bin"), binary=True)
    mean = kv.vectors.mean(axis=0)

    def similarity(a: str, b: str) -> float:
        x, y = kv[a] - mean, kv[b] - mean
        return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
    categories = [{c: [f[0] for f in forms] for c, forms in SHAPE_WORDS.items()},
                  {c: [f[1] for f in forms] for c, forms in SHAPE_WORDS.items()},
                  COLOUR_WORDS, SIZE_WORDS, ATTRIBUTE_WORDS]
    total = known = near = chance = 0
    lines = []
    for table in categories:
        training = {c: words[0] for c, words in table.items()}
        for concept, words in table.items():
            for word in words[1:]:
                total += 1
                if word not in kv:
                    lines.append(f"{word}: not in the vectors")
                    continue
                known += 1
                if training[concept] not in kv:
                    lines.append(f"{word}: in the vectors, but its training word {training[concept]!r} is not")
                    continue
                sims = {c: similarity(word, w) for c, w in training.items() if w in kv}
                nearest = max(sims, key=sims.get)
                near += nearest == concept
                chance += 1 / len(sims)
                lines.append(f"{word}: nearest training word {training[nearest]!r} "
                             f"({'right' if nearest == concept else 'wrong'}; {training[concept]} {sims[concept]:.2f})")
    compared = sum(" nearest training word " in line for line in lines)
    summary = (f"paraphrase synonyms: {total}; in the vectors: {known}; nearest (cosine) to their own concept's "
               f"training word: {near} of the {compared} whose training word is in the vectors too "
               f"(chance {chance:.1f})")
    return summary, lines


def write_outputs(rows: list[dict], summary: dict, table: str, header: str, details: str, out_prefix: Path,
                  png: Path) -> None:
    buffer = io.StringIO()
    fields = ["mode", "seed", *SPLITS, "oov_words", "paraphrase_words_oov", "frozen_rows_changed", "train_s"]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(out_prefix.with_suffix(".csv")) as tmp:
        tmp.write_text(buffer.getvalue())
    with atomic_path(out_prefix.with_suffix(".md")) as tmp:
        tmp.write_text(header.replace("\n", "\n\n") + "\n\n" + table + "\n" + details)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.27
    for i, mode in enumerate(MODES):
        means = [summary[mode][s][0] for s in SPLITS]
        stds = [summary[mode][s][1] for s in SPLITS]
        ax.bar([x + (i - 1) * width for x in range(len(SPLITS))], means, width, yerr=stds, capsize=4, label=mode)
    ax.set_xticks(range(len(SPLITS)), SPLITS)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("VQA-style classifier: question embedding init")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=Path, default=None,
                        help="run dir of python -m w2v.train (vectors.bin + tokenizer.json); default: train them")
    parser.add_argument("--corpus", default=None,
                        help=f"text file to train the vectors on, or '{SAMPLE}' for the bundled sample; default: "
                        f"{BIG_CORPUS.relative_to(REPO)} if it exists, else the sample")
    parser.add_argument("--vector-epochs", type=int, default=None,
                        help=f"w2v.train epochs (default: {FILE_CORPUS_EPOCHS} on a file corpus, the project "
                        "default on the sample)")
    parser.add_argument("--backend", default=None, help="w2v.train backend when training the vectors "
                        "(default: fused if present, else dense)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train", type=int, default=15000, help="training questions")
    parser.add_argument("--test", type=int, default=1000, help="questions in test and in test_paraphrase")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse finished runs under --out with identical settings (to re-render the report)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "downstream", help="run dirs")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "data" / "downstream",
                        help="prefix of the CSV and markdown table")
    parser.add_argument("--png", type=Path, default=REPO / "docs" / "img" / "downstream.png")
    args = parser.parse_args()
    if args.seeds < 1 or args.jobs < 1 or args.threads < 1:
        sys.exit("error: --seeds, --jobs and --threads must be >= 1")
    if args.vector_epochs is not None and args.vector_epochs < 1:
        sys.exit("error: --vector-epochs must be >= 1")
    args.out = args.out.resolve()

    started = time.perf_counter()
    if args.vectors:
        vectors = args.vectors.resolve()
    else:
        corpus = args.corpus or default_corpus()
        epochs = args.vector_epochs or (None if corpus == SAMPLE else FILE_CORPUS_EPOCHS)
        vectors = train_vectors(args.out, max(args.jobs * args.threads, 1), args.backend or default_backend(),
                                corpus, epochs)
    if not (vectors / "vectors.bin").is_file() or not (vectors / "tokenizer.json").is_file():
        sys.exit(f"error: {vectors} must hold vectors.bin and tokenizer.json (a python -m w2v.train run dir)")
    header = provenance(vectors)
    synonyms, synonym_lines = synonym_check(vectors)
    header += "\n" + synonyms
    print(header)

    # Generate the scenes once, before parallel runs would each try to.
    from w2v.vqa.questions import SceneSpec
    from w2v.vqa.scene_cache import load_or_generate
    load_or_generate(SceneSpec(train=args.train, test=args.test, test_paraphrase=args.test, seed=args.data_seed),
                     args.out / "cache")

    jobs = [(mode, seed) for seed in range(1, args.seeds + 1) for mode in MODES]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda job: one_run(job[0], job[1], vectors, args), jobs))
    summary = summarise(rows)
    header += (f"\nVQA: {args.train} training questions, {args.test} test + {args.test} test_paraphrase, "
               f"{args.epochs} epochs, seeds 1-{args.seeds}; OOV question words (random trainable rows): "
               f"{rows[-1]['oov_words']}, of them paraphrase-only synonyms: {rows[-1]['paraphrase_words_oov']}")
    table = markdown(summary, rows, args.seeds)
    details = "Synonyms against the vectors:\n\n" + "".join(f"- {line}\n" for line in synonym_lines)
    write_outputs(rows, summary, table, header, details, args.report, args.png)
    print("\n" + header + "\n\n" + table)
    gain = max(summary[m]["test_paraphrase"][0] for m in ("pretrained-frozen", "pretrained-finetuned")) \
        - summary["random"]["test_paraphrase"][0]
    print(f"best pretrained mode vs random on test_paraphrase: {gain:+.1f} points "
          f"({'meets' if gain >= 5 else 'does NOT meet'} the 5-point target)")
    print(f"wrote {args.report.with_suffix('.csv')}, {args.report.with_suffix('.md')}, {args.png} "
          f"in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
