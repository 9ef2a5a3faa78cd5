"""How fast phrase detection runs (w2v/phrases.py), pass by pass, against the text pass before it and gensim.

    python scripts/bench_phrases.py --corpus data/big/tech-clean.txt [--corpus more.txt] [--repeats 3] [--gensim]

For each corpus: the text pass once (w2v/encode.py, the compiled splitter), then --repeats runs of
phrases=default (2 passes) on a copy of its id stream, with the C pair table and (one run) the numpy
path. Each pass counts every pair, scores, and rewrites the stream; its words/s divide the words it
reads (the stream's tokens, line ends left out) by its whole time. The median of the repeats is shown.
--gensim adds gensim's Phrases on the same tokens (its vocabulary pass, then applying it to every
sentence), for scale. Writes bench_phrases.csv and .md to --out; prints the load average before and after.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from w2v.atomic import write_report  # noqa: E402
from w2v.config import PhrasesConfig  # noqa: E402
from w2v.corpus import Corpus  # noqa: E402
from w2v.encode import LINE_END_ID, ProvisionalIds, number_corpus  # noqa: E402
from w2v.kernels import load_phrases, load_words  # noqa: E402
from w2v.phrases import join_phrases  # noqa: E402


def run_passes(provisional: ProvisionalIds, folder: Path, kernel) -> list:
    copy = folder / "copy.int32"
    shutil.copyfile(provisional.path, copy)
    start = ProvisionalIds(path=copy, words=list(provisional.words), counts=provisional.counts.copy(),
                           tokens=provisional.tokens)
    result, stats = join_phrases(start, PhrasesConfig(passes=2), kernel)
    result.path.unlink()
    return stats


def gensim_rows(provisional: ProvisionalIds, name: str) -> list[dict]:
    """gensim's Phrases on the same tokens: learning its vocabulary, then phrasing every sentence."""
    import numpy as np
    from gensim.models.phrases import Phrases

    ids = np.fromfile(provisional.path, np.int32)
    ends = np.flatnonzero(ids == LINE_END_ID)
    words = provisional.words
    sentences = [[words[i] for i in line] for line in np.split(ids, ends + 1)[:-1] if len(line) > 1]
    sentences = [s[:-1] for s in sentences]  # the line end
    tokens = sum(map(len, sentences))
    started = time.perf_counter()
    model = Phrases(sentences, min_count=5, threshold=10.0)
    learned = time.perf_counter() - started
    started = time.perf_counter()
    for _ in model[sentences]:
        pass
    applied = time.perf_counter() - started
    return [{"corpus": name, "way": "gensim Phrases: vocabulary (pass 1 counting)", "seconds": learned,
             "words": tokens, "words_per_s": tokens / learned},
            {"corpus": name, "way": "gensim Phrases: applying to every sentence", "seconds": applied,
             "words": tokens, "words_per_s": tokens / applied},
            {"corpus": name, "way": "gensim Phrases: one pass in all", "seconds": learned + applied,
             "words": tokens, "words_per_s": tokens / (learned + applied)}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", required=True, help="text file (repeatable)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gensim", action="store_true", help="also time gensim's Phrases on the same tokens")
    parser.add_argument("--out", default="outputs/bench_phrases")
    args = parser.parse_args()
    kernel = load_phrases()  # built (once per machine) before any timing
    if kernel is None:
        sys.exit("error: no C compiler, so no compiled pair table to time")
    rows, load_before = [], os.getloadavg()
    for corpus_path in args.corpus:
        name = Path(corpus_path).name
        with tempfile.TemporaryDirectory(prefix="bench-phrases-") as tmp:
            folder = Path(tmp)
            started = time.perf_counter()
            provisional = number_corpus(Corpus(kind="files", paths=[Path(corpus_path)]).text_blocks(),
                                        folder / "ids.int32", "punct", kernel=load_words())
            seconds = time.perf_counter() - started
            words = int(provisional.counts.sum() - provisional.counts[LINE_END_ID])
            rows.append({"corpus": name, "way": "text pass (words.c), for scale", "seconds": seconds,
                         "words": words, "words_per_s": words / seconds})
            for label, way, repeats in (("C", kernel, args.repeats), ("numpy", None, 1)):
                runs = [run_passes(provisional, folder, way) for _ in range(repeats)]
                for number in range(2):
                    passes = [run[number] for run in runs]
                    median = statistics.median(p.seconds for p in passes)
                    rows.append({"corpus": name, "way": f"phrases pass {number + 1} ({label})", "seconds": median,
                                 "words": passes[0].tokens_in, "words_per_s": passes[0].tokens_in / median,
                                 "pairs": passes[0].pairs, "phrases": passes[0].phrases,
                                 "joined": passes[0].joined, "runs": repeats})
            if args.gensim:
                rows.extend(gensim_rows(provisional, name))
            print(f"{name}: done", flush=True)
    load_after = os.getloadavg()
    lines = ["| corpus | way | words | seconds | words/s | distinct pairs | phrases | joined |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['corpus']} | {r['way']} | {r['words']:,} | {r['seconds']:.2f} | "
                     f"{r['words_per_s'] / 1e6:.1f}M | {r.get('pairs', ''):{',' if 'pairs' in r else ''}} | "
                     f"{r.get('phrases', ''):{',' if 'phrases' in r else ''}} | "
                     f"{r.get('joined', ''):{',' if 'joined' in r else ''}} |")
    lines += ["", f"{os.cpu_count()} cores; load average (1, 5, 15 min) {tuple(round(x, 1) for x in load_before)} "
                  f"before, {tuple(round(x, 1) for x in load_after)} after; C rows: median of {args.repeats} runs"]
    print("\n".join(lines))
    write_report(args.out, "bench_phrases", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
