"""Run word2vec.c, fastText, gensim and w2v side by side on one corpus; print one markdown table.

    python scripts/compare_tools.py --corpus data/big/tech-clean.txt
    python scripts/compare_tools.py --corpus /tmp/small.txt --models cbow --seeds 3 --tools gensim w2v
    python scripts/compare_tools.py --word2vec /path/to/word2vec --fasttext /path/to/fasttext

Writes compare_tools.csv (one row per run) and compare_tools.md (the table) to --out.

Installing the tools (none is a dependency of the project; a missing one is skipped with a note):
- fastText: `apt-get install fasttext` (Debian 12 ships 0.9.2), or build the CLI from
  github.com/facebookresearch/fastText with `make` (pip's fasttext-wheel has only the Python
  module, not the command line this script runs).
- word2vec.c: Debian 12 has no package. Build Mikolov's code from github.com/tmikolov/word2vec:
  `gcc word2vec.c -o word2vec -lm -pthread -O3 -march=native -funroll-loops` (its makefile's flags),
  then put it on PATH or pass --word2vec.
- gensim: already in the project's environment (w2v.evaluate uses it).

Every tool gets the same settings: dim 100, window 5, negative 5 (no hierarchical softmax),
sample 1e-3, min_count 5, 3 epochs, 2 threads, skip-gram and/or CBOW. The learning rate is
each tool's own default (column lr): word2vec.c 0.025 skip-gram / 0.05 CBOW, fastText 0.05,
gensim 0.025, w2v train.lr 0.03 (w2v/conf/config.yaml). fastText runs with -minn 0 -maxn 0, so it
learns no subwords and is plain word2vec. Each run starts cold: a fresh temporary directory
(and, for w2v, a fresh token-id cache); the corpus file itself may sit in the OS page cache,
the same for every tool.

The commands timed:
- word2vec.c: word2vec -train F -output v.bin -cbow 0|1 -size 100 -window 5 -negative 5 -hs 0
  -sample 1e-3 -min-count 5 -iter 3 -threads 2 -binary 1
- fastText:   fasttext skipgram|cbow -input F -output v -dim 100 -ws 5 -neg 5 -t 1e-3
  -minCount 5 -epoch 3 -thread 2 -minn 0 -maxn 0 -seed S   (evaluates v.vec)
- gensim:     a subprocess running a short inline script: Word2Vec(workers=2, ...), build_vocab
  and train over LineSentence(F), save_word2vec_format(binary). LineSentence splits on
  whitespace and cuts lines at 10,000 words, so a one-line corpus is truncated for gensim.
- w2v:        python -m w2v.train data=files data.paths=[F] model=M train.epochs=3 evaluate=false
  cache_dir=TMP hydra.run.dir=TMP plus the shared settings above; project defaults otherwise.

Columns:
- whole s: seconds from launching the command to its exit, vectors file written (mean ± sd over seeds).
- ÷ gensim: whole s divided by gensim's whole s for the same model (lower is faster).
- train words/s: corpus words x epochs / training seconds, wall clock. "Corpus words" is the
  file's whitespace word count for every tool, because the tools count differently
  (word2vec.c and fastText count a </s> per line; w2v's tokenizer splits punctuation).
  Training seconds: word2vec.c and fastText print "Progress: x%" as they train; the script
  timestamps those lines as they arrive and takes seconds per 100% from the first to the last
  (so vocabulary building and writing are excluded). gensim: the time of train() alone.
  w2v: train_s from its metrics.json.
- own words/s: the tool's own printed figure, x threads and rescaled to whitespace words.
  word2vec.c's Words/thread/sec divides by clock(), the process CPU time, so it reads as if
  each thread had a whole core; on a loaded machine it overstates the wall-clock speed.
  fastText's words/sec/thread is wall clock. For gensim and w2v the column repeats train words/s.
- analogy, WS-353, SimLex: w2v.evaluate.evaluate_vectors on the written vectors, loaded with
  gensim's KeyedVectors (analogy over the 30,000 most frequent words, Spearman for the pairs).
- vocab: words in the written vectors file (word2vec.c and fastText include </s>).

word2vec.c's GitHub HEAD (tmikolov/word2vec 20c129a) never resets its eof flag after an epoch:
a thread that reached the end of the file in epoch 1 skips the later epochs. With 2 threads the
second thread starts mid-file, so on some corpora (tech-clean.txt) it trains one epoch, not 3,
and the run stops at about 67% of its nominal words. The script records the last progress
(column progress_end in the CSV) and prints a note under the table when it is below 99%: that
run's whole s covers less work, and its train words/s is the rate over the words it did process.

--seeds N repeats every run with seeds 1..N (word2vec.c has no seed option: its repeats differ
only by thread timing). The load average before and after goes into the .md: the numbers
mean little on a machine that other work keeps busy.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from w2v.config import TrainConfig  # noqa: E402

TOOLS = ("word2vec.c", "fastText", "gensim", "w2v")
# Each tool's default learning rate (w2v: train.lr in w2v/conf/config.yaml); only word2vec.c's depends on the model.
DEFAULT_LR = {**{(t, m): 0.025 for t in ("word2vec.c", "gensim") for m in ("skipgram", "cbow")},
              **{("w2v", m): TrainConfig.lr for m in ("skipgram", "cbow")},
              ("word2vec.c", "cbow"): 0.05, ("fastText", "skipgram"): 0.05, ("fastText", "cbow"): 0.05}
METRICS = ("analogy_acc", "ws353_spearman", "simlex_spearman")
PROGRESS = re.compile(rb"Progress:\s*([\d.]+)%")
W2VC_RATE = re.compile(rb"Words/thread/sec:\s*([\d.]+)k")
W2VC_WORDS = re.compile(rb"Words in train file:\s*(\d+)")
FT_RATE = re.compile(rb"words/sec/thread:\s*(\d+)")

# gensim as a user runs it, in its own process so that import and start-up count as for the others.
GENSIM_SCRIPT = """
import json, sys, time
from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence
path, out, sg, seed, threads, epochs, dim, window, negative, sample, min_count = sys.argv[1:]
corpus = LineSentence(path)
model = Word2Vec(vector_size=int(dim), window=int(window), negative=int(negative), hs=0, sample=float(sample),
                 min_count=int(min_count), sg=int(sg), workers=int(threads), seed=int(seed))
model.build_vocab(corpus)
started = time.perf_counter()
model.train(corpus, total_examples=model.corpus_count, epochs=int(epochs))
train_s = time.perf_counter() - started
model.wv.save_word2vec_format(out, binary=True)
print("GENSIM_RESULT " + json.dumps({"train_s": train_s}))
"""


def corpus_size(path: Path) -> tuple[int, int]:
    """(whitespace words, lines): the one word count every words/s figure uses."""
    words = lines = 0
    with open(path, "rb") as f:
        for line in f:
            words += len(line.split())
            lines += 1
    return words, lines


def run_timed(command: list[str], cwd: Path) -> tuple[float, list[tuple[float, float]], bytes]:
    """Run to exit; return (seconds, [(seconds since launch, progress fraction)], all output).

    Output is read as it comes so that each "Progress: x%" line gets the time it was printed
    (word2vec.c flushes stdout after each; fastText writes them to stderr).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    points, pending, output = [], b"", []
    while True:
        data = os.read(proc.stdout.fileno(), 1 << 16)
        if not data:
            break
        now = time.perf_counter() - started
        output.append(data)
        *lines, pending = re.split(rb"[\r\n]", pending + data)  # progress lines end in \r
        for line in lines:
            match = PROGRESS.search(line)
            # Only a rise counts: fastText prints 100% twice, the second after its threads are joined.
            if match and (not points or float(match.group(1)) / 100 > points[-1][1]):
                points.append((now, float(match.group(1)) / 100))
    proc.wait()
    seconds = time.perf_counter() - started
    text = b"".join(output)
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {proc.returncode}: {text[-2000:].decode(errors='replace')}")
    return seconds, points, text


def seconds_per_run(points: list[tuple[float, float]]) -> float | None:
    """Training seconds for 0..100%, from the first and last progress line that show progress."""
    points = [p for p in points if p[1] > 0]
    if len(points) < 2 or points[-1][1] - points[0][1] < 0.05:  # too few to fit a rate (tiny corpus)
        return None
    return (points[-1][0] - points[0][0]) / (points[-1][1] - points[0][1])


def last_number(pattern: re.Pattern, text: bytes) -> float | None:
    return float(pattern.findall(text)[-1]) if pattern.search(text) else None


def run_tool(tool: str, model: str, seed: int, args, binaries: dict, tmp: Path) -> dict:
    """Run one tool once, cold, in tmp; return timings and the vectors path (not yet evaluated)."""
    a, sg = args, model == "skipgram"
    words, lines = a.corpus_words, a.corpus_lines
    row = {"tool": tool, "model": model, "seed": seed, "lr": DEFAULT_LR[(tool, model)]}
    if tool == "word2vec.c":
        vectors = tmp / "vectors.bin"
        command = [binaries[tool], "-train", str(a.corpus), "-output", str(vectors), "-cbow", str(int(not sg)),
                   "-size", str(a.dim), "-window", str(a.window), "-negative", str(a.negative), "-hs", "0",
                   "-sample", str(a.sample), "-min-count", str(a.min_count), "-iter", str(a.epochs),
                   "-threads", str(a.threads), "-binary", "1"]
        row["whole_s"], points, out = run_timed(command, tmp)
        row["train_s"] = seconds_per_run(points)
        row["progress_end"] = points[-1][1] if points else None  # see the docstring: it can stop short
        rate, counted = last_number(W2VC_RATE, out), last_number(W2VC_WORDS, out)
        if rate and counted:  # its words are in-vocabulary tokens plus one </s> a line: rescale
            row["own_words_per_sec"] = rate * 1000 * a.threads * words / counted
    elif tool == "fastText":
        command = [binaries[tool], model, "-input", str(a.corpus), "-output", str(tmp / "vectors"),
                   "-dim", str(a.dim), "-ws", str(a.window), "-neg", str(a.negative), "-t", str(a.sample),
                   "-minCount", str(a.min_count), "-epoch", str(a.epochs), "-thread", str(a.threads),
                   "-minn", "0", "-maxn", "0", "-seed", str(seed)]
        vectors = tmp / "vectors.vec"
        row["whole_s"], points, out = run_timed(command, tmp)
        row["train_s"] = seconds_per_run(points)
        rate = last_number(FT_RATE, out)
        if rate:  # it counts every token plus an end-of-line token per line
            row["own_words_per_sec"] = rate * a.threads * words / (words + lines)
    elif tool == "gensim":
        vectors = tmp / "vectors.bin"
        command = [sys.executable, "-c", GENSIM_SCRIPT, str(a.corpus), str(vectors), str(int(sg)), str(seed),
                   str(a.threads), str(a.epochs), str(a.dim), str(a.window), str(a.negative), str(a.sample),
                   str(a.min_count)]
        row["whole_s"], _, out = run_timed(command, tmp)
        row["train_s"] = json.loads(out.split(b"GENSIM_RESULT ")[-1].splitlines()[0])["train_s"]
    else:
        run_dir = tmp / "run"
        vectors = run_dir / "vectors.bin"
        command = [sys.executable, "-m", "w2v.train", "data=files", f"data.paths=[{a.corpus}]", f"model={model}",
                   f"train.epochs={a.epochs}", "evaluate=false", f"cache_dir={tmp / 'cache'}",
                   f"hydra.run.dir={run_dir}", f"train.seed={seed}", f"train.threads={a.threads}",
                   f"model.dim={a.dim}", f"model.window={a.window}", f"model.negative={a.negative}",
                   f"vocab.sample={a.sample}", f"vocab.min_count={a.min_count}"]
        # Launched from the repository root (the w2v package, with its conf/, lives there); files go to tmp.
        row["whole_s"], _, out = run_timed(command, Path(__file__).resolve().parent.parent)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        row["train_s"] = metrics["train_s"]
        row["w2v_corpus_words"] = metrics["corpus_words"]  # its own token count, for the CSV
    if not vectors.is_file():
        raise RuntimeError(f"{tool} wrote no {vectors.name}: {out[-2000:].decode(errors='replace')}")
    if row["train_s"]:
        row["words_per_sec"] = words * a.epochs / row["train_s"]
        row.setdefault("own_words_per_sec", row["words_per_sec"])
    row["vectors"] = vectors
    return row


def evaluate(path: Path) -> dict:
    """Quality of a vectors file in word2vec format (binary .bin, text otherwise)."""
    from gensim.models import KeyedVectors

    from w2v.evaluate import evaluate_vectors

    kv = KeyedVectors.load_word2vec_format(str(path), binary=path.suffix == ".bin")
    return {"vocab": len(kv), **evaluate_vectors(kv)}


def fmt(values: list, scale: float = 1.0, digits: int = 2, suffix: str = "") -> str:
    values = [v / scale for v in values if v is not None]
    if not values:
        return "-"
    text = f"{statistics.mean(values):.{digits}f}"
    if len(values) > 1:
        text += f" ± {statistics.stdev(values):.{digits}f}"
    return text + suffix


def table(rows: list[dict]) -> list[str]:
    lines = ["| model | tool | lr | whole s | ÷ gensim | train words/s | own words/s | analogy | WS-353 "
             "| SimLex | vocab |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for model, tool in dict.fromkeys((r["model"], r["tool"]) for r in rows):
        group = [r for r in rows if (r["model"], r["tool"]) == (model, tool)]
        ref = [r["whole_s"] for r in rows if (r["model"], r["tool"]) == (model, "gensim")]
        ratio = f"{statistics.mean(r['whole_s'] for r in group) / statistics.mean(ref):.2f}x" if ref else "-"
        col = lambda key, **kw: fmt([r.get(key) for r in group], **kw)  # noqa: E731
        lines.append(f"| {model} | {tool} | {group[0]['lr']} | {col('whole_s', digits=1)} | {ratio} "
                     f"| {col('words_per_sec', scale=1e6, suffix='M')} "
                     f"| {col('own_words_per_sec', scale=1e6, suffix='M')} | {col('analogy_acc', digits=4)} "
                     f"| {col('ws353_spearman', digits=4)} | {col('simlex_spearman', digits=4)} "
                     f"| {col('vocab', digits=0)} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/big/tech-clean.txt"))
    parser.add_argument("--models", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--word2vec", default=shutil.which("word2vec"), help="word2vec.c binary (default: PATH)")
    parser.add_argument("--fasttext", default=shutil.which("fasttext"), help="fastText binary (default: PATH)")
    parser.add_argument("--seeds", type=int, default=1, help="repeat with seeds 1..N; report mean ± sd")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("outputs/compare_tools"))
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        print(f"error: no such corpus: {args.corpus}", file=sys.stderr)
        return 2
    args.corpus = args.corpus.resolve()  # w2v runs from the repository root, the C tools from a temp dir
    binaries = {"word2vec.c": args.word2vec, "fastText": args.fasttext}
    tools = []
    for tool in args.tools:
        if tool in binaries and not (binaries[tool] and os.access(binaries[tool], os.X_OK)):
            print(f"note: skipping {tool}: no binary (pass --{tool.lower().split('.')[0]} PATH; see the docstring)")
        else:
            tools.append(tool)
    args.corpus_words, args.corpus_lines = corpus_size(args.corpus)
    import gensim

    header = (f"corpus {args.corpus} ({args.corpus_words:,} whitespace words, {args.corpus_lines:,} lines); "
              f"dim {args.dim}, window {args.window}, negative {args.negative}, sample {args.sample}, "
              f"min_count {args.min_count}, {args.epochs} epochs, {args.threads} threads, {args.seeds} seed(s); "
              f"gensim {gensim.__version__}, word2vec.c {binaries['word2vec.c']}, fastText {binaries['fastText']}")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(header + f"\nloadavg before: {load_before}", flush=True)

    rows = []
    # Tools interleaved inside each seed, so a change in the machine's load hits all of them alike.
    for model in args.models:
        for seed in range(1, args.seeds + 1):
            for tool in tools:
                with tempfile.TemporaryDirectory(prefix=f"compare-{tool}-") as tmp:
                    try:
                        row = run_tool(tool, model, seed, args, binaries, Path(tmp))
                    except (RuntimeError, OSError, ValueError, KeyError) as exc:
                        print(f"  {tool} {model} seed {seed}: FAILED: {exc}", flush=True)
                        continue
                    row.update(evaluate(row.pop("vectors")))  # untimed, before the temp dir goes
                rows.append(row)
                speed = f"{row['words_per_sec'] / 1e6:.2f}M words/s" if row.get("words_per_sec") else "no rate"
                print(f"  {tool} {model} seed {seed}: whole {row['whole_s']:.1f}s, train {speed}, "
                      f"analogy {row['analogy_acc']:.4f}", flush=True)
    if not rows:
        return 1
    short = [r for r in rows if r["tool"] == "word2vec.c" and (r.get("progress_end") or 1) < 0.99]
    notes = [f"note: word2vec.c {r['model']} seed {r['seed']} stopped at {r['progress_end']:.0%} of its nominal "
             "epochs x words (its eof flag is not reset between epochs; see the docstring)" for r in short]
    lines = [header, "", *table(rows), "", *notes,
             "whole s: launch to vectors written, cold. train words/s: whitespace words x epochs / wall "
             "training seconds. own words/s: the tool's own figure (word2vec.c's is per CPU second).",
             f"loadavg before: {load_before}; after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    print("\n" + "\n".join(lines))
    from w2v.atomic import write_report

    write_report(args.out, "compare_tools", "\n".join(lines), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
