"""How fast a new corpus becomes token ids: HF datasets and tokenizers at their batch speed vs w2v's encoder.

    python scripts/bench_preprocess.py --corpus data/big/tech.txt [--corpus more.txt] [--repeats 3]

Each way is run in a fresh child process, cold (no token-id cache), --repeats times; the table
gives the median seconds, words/s and the peak RSS of the child (and of its worker processes):
- reading: HF `datasets` streaming the text loader's lines, against w2v's 1 MB block reader
  (w2v/corpus.py), both only reading and decoding;
- the vocabulary pass with HF `tokenizers` (WordLevelTrainer fed 1 MB blocks, its Rust threads);
- the encoding pass with HF `tokenizers` (`encode_batch_fast` on 1 MB blocks, one Encoding per
  block rather than per line, ids into numpy);
- w2v's encoder (w2v/token_ids.py `load_or_build`): vocabulary, counts and ids in one text pass,
  with the compiled splitter (w2v/kernels/words.c: a reading thread and a C thread), and the
  Python path (W2V_NO_C=1) with 1 worker process and with one per core.
--way NAME (repeatable, a prefix of a row's name) runs only those rows.
Words are the corpus's whitespace-separated words (what gensim and word2vec.c count), so every
row divides the same number. Writes bench_preprocess.csv and .md to --out.
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

# Each child prints one JSON line: {"seconds": ..., "peak_mib": ...}. Timing starts after imports.
PRELUDE = """
import json, resource, sys, time, tempfile
from pathlib import Path
paths = sys.argv[1:]
def peak_mib():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024
"""
WAYS = {
    "read: HF datasets text loader": """
from datasets import load_dataset
start = time.perf_counter()
for batch in load_dataset("text", data_files=paths, split="train", streaming=True).iter(batch_size=2000):
    pass
""",
    "read: w2v block reader": """
from w2v.corpus import Corpus
start = time.perf_counter()
for block in Corpus(kind="files", paths=[Path(p) for p in paths]).text_blocks():
    pass
""",
    "vocabulary: HF tokenizers trainer (1 MB blocks)": """
from w2v.corpus import Corpus
from w2v.vocab import UNK, new_tokenizer
from tokenizers import trainers
start = time.perf_counter()
tokenizer = new_tokenizer()
trainer = trainers.WordLevelTrainer(vocab_size=2**31 - 1, min_frequency=5, special_tokens=[UNK], show_progress=False)
tokenizer.train_from_iterator(Corpus(kind="files", paths=[Path(p) for p in paths]).text_blocks(), trainer)
""",
    "encoding: HF tokenizers encode_batch_fast (1 MB blocks)": """
import numpy as np
from w2v.corpus import Corpus
from w2v.vocab import train_tokenizer
blocks = Corpus(kind="files", paths=[Path(p) for p in paths]).text_blocks()
tokenizer = train_tokenizer([next(iter(blocks)).split("\\n")], 5, None)  # any vocabulary: the cost is the same
start = time.perf_counter()
batch = []
for block in Corpus(kind="files", paths=[Path(p) for p in paths]).text_blocks():
    batch.append(block)
    if len(batch) == 4:
        for encoding in tokenizer.encode_batch_fast(batch, add_special_tokens=False):
            np.asarray(encoding.ids, dtype=np.int32)
        batch = []
for encoding in tokenizer.encode_batch_fast(batch, add_special_tokens=False):
    np.asarray(encoding.ids, dtype=np.int32)
""",
    "w2v one pass, compiled splitter": """
from w2v.config import DataConfig, VocabConfig
from w2v.corpus import open_corpus
from w2v.token_ids import load_or_build
cache = Path(tempfile.mkdtemp())
start = time.perf_counter()
load_or_build(open_corpus(DataConfig(kind="files", paths=paths), cache), VocabConfig(), cache, show_progress=False,
              log=lambda m: None)
""",
    "w2v one pass, Python path (W2V_NO_C=1), 1 worker": """
import os
os.environ["W2V_NO_C"] = "1"
from w2v.config import DataConfig, VocabConfig
from w2v.corpus import open_corpus
from w2v.token_ids import load_or_build
cache = Path(tempfile.mkdtemp())
start = time.perf_counter()
load_or_build(open_corpus(DataConfig(kind="files", paths=paths), cache), VocabConfig(), cache, show_progress=False,
              log=lambda m: None, workers=1)
""",
    "w2v one pass, Python path (W2V_NO_C=1), 1 worker per core": """
import os
os.environ["W2V_NO_C"] = "1"
from w2v.config import DataConfig, VocabConfig
from w2v.corpus import open_corpus
from w2v.token_ids import load_or_build
cache = Path(tempfile.mkdtemp())
start = time.perf_counter()
load_or_build(open_corpus(DataConfig(kind="files", paths=paths), cache), VocabConfig(), cache, show_progress=False,
              log=lambda m: None)
""",
}
EPILOGUE = """
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mib": peak_mib()}))
"""


def whitespace_words(paths: list[str]) -> int:
    words = 0
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(1 << 24):
                words += len(block.split())  # a word cut by the block edge counts twice: negligible
    return words


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", required=True, help="text file (repeatable)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="outputs/bench_preprocess")
    parser.add_argument("--way", action="append", help="run only the rows whose name starts with this (repeatable)")
    args = parser.parse_args(argv)
    words = whitespace_words(args.corpus)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(REPO))
    rows, load_before = [], os.getloadavg()[0]
    for way, body in WAYS.items():
        if args.way and not any(way.startswith(prefix) for prefix in args.way):
            continue
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, "-c", PRELUDE + body + EPILOGUE, *args.corpus], env=env,
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        seconds = statistics.median(r["seconds"] for r in runs)
        rows.append({"way": way, "seconds": seconds, "words_per_sec": words / seconds,
                     "peak_mib": max(r["peak_mib"] for r in runs)})
        print(f"  {way}: {seconds:.2f}s", flush=True)
    lines = [f"corpus: {', '.join(args.corpus)}, {words:,} words; {os.cpu_count()} cores; median of {args.repeats} "
             f"cold runs; load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end", "",
             "| way | seconds | words/s | peak RSS MiB |", "|---|---:|---:|---:|"]
    lines += [f"| {r['way']} | {r['seconds']:.2f} | {r['words_per_sec'] / 1e6:.2f}M | {r['peak_mib']:.0f} |" for r in rows]
    print("\n" + "\n".join(lines))
    write_report(args.out, "bench_preprocess", "\n".join(lines), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
