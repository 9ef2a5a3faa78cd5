"""What phrases do to the word vectors' quality: phrases=none against phrases=default, same corpus and seeds.

    nice -n 19 python scripts/phrases_quality.py --corpus data/big/dictionary.txt [--seeds 1 2 3] [--epochs 3]
        [--setting none --setting default --setting "default phrases.threshold=100"]

Each run is `python -m w2v.train` as a user runs it (skip-gram unless --model cbow), then its vectors are
scored on gensim's Google analogies, WordSim-353 and SimLex-999. Those sets hold single words only, so this
measures what joining phrases costs or gains the single words' vectors (their occurrences inside phrases
leave them, and their contexts change), not the quality of the phrase vectors. Besides the scores, the table
gives the analogy questions answerable (all four words in the vocabulary, as gensim counts them), and the
share of the occurrences of the analogy set's and WordSim-353's words that phrases absorbed. A run dir that
holds metrics.json already is not trained again. Writes phrases_quality.csv and .md to --out.
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

SCORES = ("analogy_acc", "ws353_spearman", "simlex_spearman")


def run_name(setting: str) -> str:
    return setting.replace(" ", "+").replace("=", "-")


def train(corpus: str, setting: str, seed: int, args, run_dir: Path) -> dict:
    if not (run_dir / "metrics.json").exists():
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                   PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")
        group, *overrides = setting.split()
        cmd = [sys.executable, "-m", "w2v.train", "data=files", f"data.paths=[{corpus}]", f"phrases={group}",
               *overrides, f"model={args.model}", f"train.epochs={args.epochs}", f"train.seed={seed}",
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


def phrases_config(setting: str):
    """The PhrasesConfig a setting ("default phrases.threshold=100") gives, as w2v/conf/phrases/*.yaml + overrides."""
    from omegaconf import OmegaConf

    from w2v.config import CONF_DIR, parse_phrases

    group, *overrides = setting.split()
    section = OmegaConf.load(CONF_DIR / "phrases" / f"{group}.yaml")
    for override in overrides:
        key, _, value = override.partition("=")
        section[key.removeprefix("phrases.")] = _typed(value)
    return parse_phrases(OmegaConf.to_container(section))


def _typed(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def evaluation_words() -> dict[str, set[str]]:
    """The words of the analogy set and of WordSim-353, lowercased."""
    from gensim.test.utils import datapath

    analogy = {w.lower() for line in open(datapath("questions-words.txt")) if not line.startswith(":")
               for w in line.split()}
    ws353 = {w.lower() for line in open(datapath("wordsim353.tsv")) if not line.startswith("#")
             for w in line.split("\t")[:2]}
    return {"analogy": analogy, "ws353": ws353}


def occurrences(corpus: str, cache_dir: str, setting: str, words: set[str]) -> int:
    """How often the words occur as tokens under a setting (read from the token-id cache its runs made)."""
    from w2v.config import DataConfig, VocabConfig
    from w2v.corpus import open_corpus
    from w2v.token_ids import load_or_build

    source = open_corpus(DataConfig(kind="files", paths=[corpus]), Path(cache_dir))
    ids = load_or_build(source, VocabConfig(), Path(cache_dir), show_progress=False, log=lambda m: None,
                        phrases=phrases_config(setting))
    return sum(int(ids.counts[i]) for w, i in ids.tokenizer.get_vocab().items() if w in words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="skipgram")
    parser.add_argument("--setting", action="append",
                        help='a phrases group and overrides, e.g. "default phrases.threshold=100" (repeatable; '
                             'default: none and default); the first is the baseline')
    parser.add_argument("--cache-dir", default="data/cache")
    parser.add_argument("--out", default="outputs/phrases_quality")
    args = parser.parse_args()
    settings = args.setting or ["none", "default"]
    out = Path(args.out)
    rows = []
    for setting in settings:
        for seed in args.seeds:
            run_dir = out / "runs" / f"{run_name(setting)}-seed{seed}"
            metrics = train(args.corpus, setting, seed, args, run_dir)
            answerable, questions = analogy_coverage(run_dir)
            rows.append({"phrases": setting, "seed": seed, **{k: metrics[k] for k in SCORES},
                         "vocab_size": metrics["vocab_size"], "corpus_words": metrics["corpus_words"],
                         "analogy_answerable": answerable, "analogy_questions": questions,
                         "run_dir": str(run_dir)})
            print(rows[-1], flush=True)
    words = evaluation_words()
    baseline = {name: occurrences(args.corpus, args.cache_dir, settings[0], ws) for name, ws in words.items()}
    absorbed = {setting: {name: 1 - occurrences(args.corpus, args.cache_dir, setting, ws) / baseline[name]
                          for name, ws in words.items()} for setting in settings}

    def cell(setting: str, key: str) -> str:
        values = [r[key] for r in rows if r["phrases"] == setting]
        text = f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"
        if setting != settings[0]:
            base = statistics.mean(r[key] for r in rows if r["phrases"] == settings[0])
            text += f" ({statistics.mean(values) - base:+.4f})"
        return text

    lines = [f"{Path(args.corpus).name}, {args.model}, {args.epochs} epochs, seeds {args.seeds}", "",
             "| phrases | tokens | vocabulary | analogy answerable | occurrences of analogy / WS-353 words "
             "joined into phrases | analogy | WS-353 | SimLex-999 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for setting in settings:
        first = next(r for r in rows if r["phrases"] == setting)
        lines.append(f"| {setting} | {first['corpus_words']:,} | {first['vocab_size']:,} | "
                     f"{first['analogy_answerable']:,} / {first['analogy_questions']:,} | "
                     f"{absorbed[setting]['analogy']:.1%} / {absorbed[setting]['ws353']:.1%} | "
                     + " | ".join(cell(setting, k) for k in SCORES) + " |")
        for row in rows:
            if row["phrases"] == setting:
                row.update({f"{name}_words_joined": share for name, share in absorbed[setting].items()})
    print("\n".join(lines))
    write_report(out, "phrases_quality", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
