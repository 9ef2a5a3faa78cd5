"""Build data/big/: a larger English corpus (>= 5M tokens) from Debian package files, offline.

    apt-get install -y dict-gcide        # GCIDE: Webster's 1913 + later additions, public domain
    python scripts/make_big_corpus.py    # -> data/big/gcide.txt, one paragraph per line

GCIDE (the GNU Collaborative International Dictionary of English) ships in Debian as a
gzip-compatible dictd file. Its definitions and the literary quotations under them make
about 6M tokens of English once the dictionary markup is removed: source tags such as
"[1913 Webster]", etymologies in brackets, pronunciations between backslashes, cross-
reference braces and "--Author." attributions. Entries split into paragraphs on blank
lines; each paragraph becomes one line (one "sentence" for windowing).
data/big/ is git-ignored. Used by scripts/compare_gensim.py --corpus and bench_scaling.py.
"""
from __future__ import annotations

import argparse
import gzip
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from w2v.atomic import atomic_path  # noqa: E402

GCIDE = Path("/usr/share/dictd/gcide.dict.dz")
MARKUP = [
    (re.compile(r"\[[^\[\]]*\]"), " "),  # source tags and etymologies
    (re.compile(r"\\[^\\\n]*\\"), " "),  # pronunciations: \A*buse"\
    (re.compile(r"--[A-Z][\w.' ]{0,40}?\.(?=\s|$)"), " "),  # attributions: --Shak.
    (re.compile(r"[{}]"), ""),  # cross-reference braces
    (re.compile(r"\s+"), " "),
]


def clean(paragraph: str) -> str:
    for pattern, replacement in MARKUP:
        paragraph = pattern.sub(replacement, paragraph)
    return paragraph.strip()


def gcide_paragraphs(path: Path):
    """Cleaned paragraphs of the dictionary, in file order; ones with fewer than 3 words are dropped."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        block: list[str] = []
        for line in f:
            if line.strip():
                block.append(line)
                continue
            if block:
                text = clean(" ".join(block))
                if len(text.split()) >= 3:
                    yield text
                block = []
        if block and len(clean(" ".join(block)).split()) >= 3:
            yield clean(" ".join(block))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "data" / "big"), help="output folder")
    args = parser.parse_args(argv)
    if not GCIDE.exists():
        print(f"error: {GCIDE} not found; install it first: apt-get install -y dict-gcide", file=sys.stderr)
        return 2
    target = Path(args.out) / "gcide.txt"
    words = lines = 0
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for paragraph in gcide_paragraphs(GCIDE):
            out.write(paragraph + "\n")
            words += len(paragraph.split())
            lines += 1
    print(f"wrote {target}: {lines:,} lines, {words:,} whitespace-separated words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
