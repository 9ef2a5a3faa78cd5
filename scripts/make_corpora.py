"""Build the held-out corpora in data/big/ from Debian package files, offline, and list them.

    apt-get install -y dict-gcide dict-wn dict-foldoc linux-doc-6.1 python3.11-doc
    python scripts/make_corpora.py      # -> data/big/*.txt and data/big/CORPORA.txt

Two kinds of text, each >= 5M words:
- dictionary.txt: the GCIDE dictionary (definitions and literary quotations; cleaned as in
  scripts/make_big_corpus.py), then WordNet's glosses and examples (one sense a line) up to
  6M words; raw text with punctuation, one paragraph per line;
- tech.txt: technical documentation, raw text with punctuation, one paragraph per line:
  the Linux kernel's Documentation/ (reStructuredText), the Python 3.11 manual's sources
  and FOLDOC (the Free On-line Dictionary of Computing);
- tech-clean.txt: tech.txt pre-cleaned text8-style: lowercase, every character outside
  [a-z] turned into a space, one paragraph per line;
- tech-clean-oneline.txt: the same words on a single line (text8's shape, no newline inside).
Word counts are whitespace-separated words. data/big/ is git-ignored.
"""
from __future__ import annotations

import argparse
import gzip
import itertools
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from make_big_corpus import GCIDE, gcide_paragraphs  # noqa: E402

from w2v.atomic import atomic_path  # noqa: E402

KERNEL_DOCS = Path("/usr/share/doc/linux-doc-6.1/Documentation")
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html/_sources")
FOLDOC = Path("/usr/share/dictd/foldoc.dict.dz")
WORDNET = Path("/usr/share/dictd/wn.dict.dz")
PACKAGES = "dict-gcide dict-wn dict-foldoc linux-doc-6.1 python3.11-doc"
DICTIONARY_WORDS = 6_000_000  # GCIDE, then WordNet senses in file order until this many words

RST_NOISE = re.compile(r"^\s*(\.\. |:[\w-]+:|[=\-~^*#+`'\"_.]{3,}\s*$)")  # directives, fields, underlines
INLINE = [(re.compile(r":[\w:]+:`([^`]*)`"), r"\1"),  # :ref:`text` -> text
          (re.compile(r"`+"), ""), (re.compile(r"\*\*?"), ""), (re.compile(r"\s+"), " ")]
NOT_LETTER = re.compile(r"[^a-z]+")


def _open_text(path: Path):
    opener = gzip.open if path.suffix in (".gz", ".dz") else open
    return opener(path, "rt", encoding="utf-8", errors="replace")


def paragraphs(path: Path, skip=None):
    """Blank-line separated paragraphs of a text file (plain or gzip), lines matching `skip` dropped."""
    block: list[str] = []
    with _open_text(path) as f:
        for line in f:
            if skip is not None and skip.match(line):
                continue
            if line.strip():
                block.append(line.strip())
            elif block:
                yield " ".join(block)
                block = []
    if block:
        yield " ".join(block)


def tidy(text: str) -> str:
    for pattern, replacement in INLINE:
        text = pattern.sub(replacement, text)
    return text.strip()


def tech_paragraphs():
    """Kernel docs, then the Python manual, then FOLDOC; paragraphs of >= 3 words."""
    files = sorted(KERNEL_DOCS.rglob("*.rst.gz")) + sorted(KERNEL_DOCS.rglob("*.txt.gz")) \
        + sorted(PYTHON_DOCS.rglob("*.rst.txt"))
    for path in files:
        for p in paragraphs(path, RST_NOISE):
            p = tidy(p)
            if len(p.split()) >= 3:
                yield p
    for p in paragraphs(FOLDOC):
        p = tidy(p)
        if len(p.split()) >= 3:
            yield p


WN_SENSE = re.compile(r"\s(?:(?:n|v|adj|adv)\s+)?\d+:\s|^\s*(?:n|v|adj|adv):\s")
WN_MARKUP = [(re.compile(r"\[[^\[\]]*\]"), " "), (re.compile(r"[{}]"), ""), (re.compile(r"\s+"), " ")]


def wordnet_senses(path: Path):
    """One line per WordNet sense: its gloss and examples, synonym lists dropped."""
    def senses(entry: list[str]):
        body = " " + " ".join(entry)
        for pattern, replacement in WN_MARKUP:
            body = pattern.sub(replacement, body)
        for sense in WN_SENSE.split(body):
            sense = sense.strip()
            if len(sense.split()) >= 3:
                yield sense

    entry: list[str] = []
    with _open_text(path) as f:
        for line in f:
            if line[:1].strip():  # a headword starts a new entry
                yield from senses(entry)
                entry = []
            elif line.strip():
                entry.append(line.strip())
    yield from senses(entry)


def first_words(paragraphs, limit: int):
    """The paragraphs until `limit` words have been given (the last one whole)."""
    words = 0
    for p in paragraphs:
        if words >= limit:
            return
        words += len(p.split())
        yield p


def dictionary_paragraphs(limit: int):
    """GCIDE's paragraphs, then WordNet's senses, until `limit` words."""
    return first_words(itertools.chain(gcide_paragraphs(GCIDE), wordnet_senses(WORDNET)), limit)


def sources_missing(paths, packages: str) -> bool:
    """True (after saying which, and what to install) when any of the source paths is not there."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"error: {', '.join(missing)} not found; install them first: apt-get install -y {packages}",
              file=sys.stderr)
    return bool(missing)


def text8_clean(text: str) -> str:
    """Lowercase words of [a-z] only, single spaces."""
    return NOT_LETTER.sub(" ", text.lower()).strip()


def write_lines(target: Path, lines) -> tuple[int, int]:
    words = count = 0
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")
            words += len(line.split())
            count += 1
    return count, words


def update_listing(out: Path, entries: list[str]) -> None:
    """Write out/CORPORA.txt atomically with these "path\twords\tlines\twhat" entries, keeping the entries
    of corpora other scripts built (make_heldout_corpus.py's manuals.txt) and replacing older ones of these."""
    listing = out / "CORPORA.txt"
    paths = {entry.split("\t", 1)[0] for entry in entries}
    kept = [line for line in listing.read_text().splitlines()[1:] if line.split("\t", 1)[0] not in paths] \
        if listing.exists() else []
    with atomic_path(listing) as tmp:
        tmp.write_text("# path\twords\tlines\twhat (built by scripts/make_corpora.py, make_heldout_corpus.py)\n"
                       + "\n".join([*kept, *entries]) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "data" / "big"), help="output folder")
    args = parser.parse_args(argv)
    if sources_missing((GCIDE, WORDNET, KERNEL_DOCS, PYTHON_DOCS, FOLDOC), PACKAGES):
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    listing = []

    def report(name: str, lines: int, words: int, what: str):
        listing.append(f"{out / name}\t{words}\t{lines}\t{what}")
        print(f"wrote {out / name}: {lines:,} lines, {words:,} words ({what})", flush=True)

    report("dictionary.txt", *write_lines(out / "dictionary.txt", dictionary_paragraphs(DICTIONARY_WORDS)),
           "GCIDE definitions + quotations, then WordNet glosses; raw text, one paragraph per line")
    report("tech.txt", *write_lines(out / "tech.txt", tech_paragraphs()),
           "kernel docs + Python manual + FOLDOC, raw text, one paragraph per line")
    clean = (c for c in (text8_clean(p) for p in tech_paragraphs()) if c)
    report("tech-clean.txt", *write_lines(out / "tech-clean.txt", clean),
           "tech.txt text8-style: [a-z ] only, one paragraph per line")
    words = 0
    with atomic_path(out / "tech-clean-oneline.txt") as tmp, open(tmp, "w", encoding="utf-8") as f_out, \
            open(out / "tech-clean.txt", encoding="utf-8") as f_in:
        first = True
        for line in f_in:
            line = line.strip()
            if line:
                f_out.write(("" if first else " ") + line)
                words += len(line.split())
                first = False
    report("tech-clean-oneline.txt", 1, words, "tech-clean.txt as one line, no newline (text8's shape)")
    update_listing(out, listing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
