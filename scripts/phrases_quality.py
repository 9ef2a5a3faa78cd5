"""What phrases do to the word vectors' quality: phrases=none against phrases=default, same corpus and seeds.

    nice -n 19 python scripts/phrases_quality.py --corpus data/big/dictionary.txt [--seeds 1 2 3] [--epochs 3]

Each run is `python -m w2v.train` as a user runs it (skip-gram unless --model cbow), then its vectors are
scored on gensim's Google analogies, WordSim-353 and SimLex-999. Those sets hold single words only, so this
measures what joining phrases costs or gains the single words' vectors (their occurrences inside phrases
leave them, and their contexts change), not the quality of the phrase vectors. Besides the scores, the table
gives the analogy questions answerable (all four words in the vocabulary: gensim's 30,000 most frequent), and
the share of the occurrences of the analogy set's words that phrases absorbed. Writes phrases_quality.csv and
.md to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from w2v.atomic import write_report  # noqa: E402

SETTINGS = ("none", "default")
SCORES = ("analogy_acc", "ws353_spearman", "simlex_spearman")


def train(corpus: str, phrases: str, seed: int, args, run_dir: Path) -> dict:
    if not (run_dir / "metrics.json").exists():
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                   PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")
        cmd = [sys.executable, "-m", "w2v.train", "data=files", f"data.paths=[{corpus}]", f"phrases={phrases}",
               f"model={args.model}", f"train.epochs={args.epochs}", f"train.seed={seed}",
               f"cache_dir={args.cache_dir}", f"hydra.run.dir={run_dir}", "export.projector_words=0", "overwrite=true"]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode:
            sys.exit(f"error: {' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return json.loads((run_dir / "metrics.json").read_text())


def analogy_coverage(run_dir: Path) -> tuple[int, int]:
    """(questions answerable, questions in the set): those whose four words (lowercased) are all in the
    vocabulary, as gensim's evaluate_word_analogies counts them (its 300,000 most frequent words)."""
    from gensim.test.utils import datapath

    vocab = json.loads((run_dir / "tokenizer.json").read_text())["model"]["vocab"]
    known = {w for w, i in vocab.items() if i <= 300_000}
    questions = [line.lower().split() for line in open(datapath("questions-words.txt")) if not line.startswith(":")]
    return sum(all(w in known for w in q) for q in questions), len(questions)


def absorbed_share(corpus: str, cache_dir: str) -> float:
    """Share of the occurrences of the analogy set's words that phrases=default joined into phrases
    (counted in the token-id caches the runs made: a cache hit each)."""
    from gensim.test.utils import datapath

    from w2v.config import DataConfig, PhrasesConfig, VocabConfig
    from w2v.corpus import open_corpus
    from w2v.token_ids import load_or_build

    words = {w.lower() for line in open(datapath("questions-words.txt")) if not line.startswith(":")
             for w in line.split()}

    def occurrences(phrases: PhrasesConfig) -> int:
        corpus = open_corpus(DataConfig(kind="files", paths=[corpus_path]), Path(cache_dir))
        ids = load_or_build(corpus, VocabConfig(), Path(cache_dir), show_progress=False, log=lambda m: None,
                            phrases=phrases)
        vocab = ids.tokenizer.get_vocab()
        return sum(int(ids.counts[i]) for w, i in vocab.items() if w in words)

    corpus_path = corpus
    before, after = occurrences(PhrasesConfig()), occurrences(PhrasesConfig(passes=2))
    return 1 - after / before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="skipgram")
    parser.add_argument("--cache-dir", default="data/cache")
    parser.add_argument("--out", default="outputs/phrases_quality")
    args = parser.parse_args()
    out = Path(args.out)
    rows = []
    for phrases in SETTINGS:
        for seed in args.seeds:
            run_dir = out / "runs" / f"{phrases}-seed{seed}"
            metrics = train(args.corpus, phrases, seed, args, run_dir)
            answerable, questions = analogy_coverage(run_dir)
            rows.append({"phrases": phrases, "seed": seed, **{k: metrics[k] for k in SCORES},
                         "vocab_size": metrics["vocab_size"], "corpus_words": metrics["corpus_words"],
                         "analogy_answerable": answerable, "analogy_questions": questions,
                         "run_dir": str(run_dir)})
            print(rows[-1], flush=True)
    absorbed = absorbed_share(args.corpus, args.cache_dir)

    def cell(phrases: str, key: str) -> str:
        values = [r[key] for r in rows if r["phrases"] == phrases]
        text = f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"
        if phrases != SETTINGS[0]:
            baseline = statistics.mean(r[key] for r in rows if r["phrases"] == SETTINGS[0])
            text += f" ({statistics.mean(values) - baseline:+.4f})"
        return text

    lines = [f"{Path(args.corpus).name}, {args.model}, {args.epochs} epochs, seeds {args.seeds}",
             "", "| phrases | tokens | vocabulary | analogy answerable | analogy | WS-353 | SimLex-999 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for phrases in SETTINGS:
        first = next(r for r in rows if r["phrases"] == phrases)
        lines.append(f"| {phrases} | {first['corpus_words']:,} | {first['vocab_size']:,} | "
                     f"{first['analogy_answerable']:,} / {first['analogy_questions']:,} | "
                     + " | ".join(cell(phrases, k) for k in SCORES) + " |")
    lines += ["", f"phrases=default joined {absorbed:.1%} of the occurrences of the analogy set's words into phrases"]
    print("\n".join(lines))
    write_report(out, "phrases_quality", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
