"""Build data/big/manuals.txt, a corpus kept out of every tuning decision, from Debian packages, offline.

    apt-get install -y perl-doc postgresql-doc-15 git-doc dict-jargon dict-devil fortunes manpages manpages-dev
    apt-get install -y --no-install-recommends emacs-common bash-doc binutils-doc gnu-standards
    python scripts/make_heldout_corpus.py      # -> data/big/manuals.txt, listed in data/big/CORPORA.txt

The project's defaults were chosen on the sample, dictionary.txt and tech-clean.txt
(scripts/make_corpora.py). This corpus checks them on text none of those choices saw: the Perl
manual (POD), the PostgreSQL 15 manual (HTML), Git's manual pages and guides (AsciiDoc), the
Jargon File, Bierce's Devil's Dictionary and the fortune cookies, then the GNU Info manuals
(Emacs, Emacs Lisp, Bash, binutils, coreutils, ...; Python's left out, tech.txt has it) and the
manual pages of `manpages` and `manpages-dev`, until 6M words. Raw text with
punctuation, one paragraph per line (paragraphs of at least 3 words; code blocks and markup dropped).
"""
from __future__ import annotations

import argparse
import gzip
import html.parser
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from make_corpora import first_words, paragraphs, sources_missing, update_listing, write_lines  # noqa: E402

PERL_POD = Path("/usr/share/perl/5.36/pod")
POSTGRES_HTML = Path("/usr/share/doc/postgresql-doc-15/html")
GIT_DOCS = Path("/usr/share/doc/git-doc")
JARGON = Path("/usr/share/dictd/jargon.dict.dz")
DEVIL = Path("/usr/share/dictd/devil.dict.dz")
FORTUNES = Path("/usr/share/games/fortunes")
INFO = Path("/usr/share/info")
MAN_PACKAGES = ("manpages", "manpages-dev")
PACKAGES = ("perl-doc postgresql-doc-15 git-doc dict-jargon dict-devil fortunes manpages manpages-dev "
            "emacs-common bash-doc binutils-doc gnu-standards")
WORDS = 6_000_000

POD_MARKUP = re.compile(r"[A-Z]<+\s*([^<>]*?)\s*>+")  # B<bold>, C<< code >>, L<link|target>
ASCIIDOC_NOISE = re.compile(r"^\s*([=\-~^+*.'_]{3,}\s*$|\[\[|\[[a-z]+\]|:[\w-]+:|//|include::|ifdef::|endif::)")
SPACES = re.compile(r"\s+")
ROFF_BREAK = re.compile(r"^[.'](SH|SS|PP|P|LP|TP|IP|HP|sp|br|Sh|Pp|It|Bl|El|Nm|Sx)\b")
ROFF_ESCAPE = re.compile(r"\\f(\[[^\]]*\]|\(..|.)|\\\(..|\\\*(\(..|.)|\\[&|^%:]")  # \fB \(em \*R \&


def prose(text: str) -> str | None:
    """The paragraph with markup spaces folded, or None when it is too short to be prose."""
    text = SPACES.sub(" ", text).strip()
    return text if len(text.split()) >= 3 else None


def pod_paragraphs(path: Path):
    """POD text paragraphs: commands (=head1 ...) and verbatim (indented, code) paragraphs dropped."""
    block: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in list(f) + [""]:
            if line.strip():
                block.append(line.rstrip("\n"))
                continue
            if block and not block[0].startswith(("=", " ", "\t")):
                text = POD_MARKUP.sub(lambda m: m.group(1).split("|")[0], " ".join(block))
                if p := prose(text):
                    yield p
            block = []


class _HtmlText(html.parser.HTMLParser):
    """Text of <p>, <li>, <dd> and <td> blocks; <pre> and <script> contents skipped."""

    BLOCKS = {"p", "li", "dd", "td", "dt", "h1", "h2", "h3"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.current: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("pre", "script", "style"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.flush()

    def handle_endtag(self, tag):
        if tag in ("pre", "script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data):
        if not self.skip:
            self.current.append(data)

    def flush(self):
        if p := prose(" ".join(self.current)):
            self.out.append(p)
        self.current = []


def html_paragraphs(path: Path):
    parser = _HtmlText()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.flush()
    yield from parser.out


def asciidoc_paragraphs(path: Path):
    for p in paragraphs(path, ASCIIDOC_NOISE):
        if not p.startswith(("$ ", "git ")) and (p := prose(p.replace("`", "").replace("'", "'"))):
            yield p


def fortune_paragraphs(path: Path):
    """Each cookie (between lines holding only %) as one line."""
    cookie: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in list(f) + ["%\n"]:
            if line.strip() == "%":
                if p := prose(" ".join(cookie)):
                    yield p
                cookie = []
            else:
                cookie.append(line.strip())


def man_paragraphs(path: Path):
    """Text lines of a roff manual page, one paragraph between paragraph macros; other macros dropped."""
    block: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in list(f) + [".PP"]:
            if line.startswith((".", "'")):
                if ROFF_BREAK.match(line) or line.startswith((".nf", ".EX")):
                    text = ROFF_ESCAPE.sub("", " ".join(block)).replace("\\-", "-").replace("\\", "")
                    if p := prose(text):
                        yield p
                    block = []
                continue
            block.append(line.strip())


def info_paragraphs(path: Path):
    """Prose paragraphs of a GNU Info file: node headers, menus and indented examples dropped."""
    for p in paragraphs(path):
        if "\x1f" in p or p.startswith(("File:", "* ", "Tag Table:", "END-INFO")):
            continue
        if p := prose(p):
            yield p


def package_files(package: str, pattern: str) -> list[Path]:
    """The files dpkg lists for an installed package whose path matches `pattern`."""
    listing = Path("/var/lib/dpkg/info") / f"{package}.list"
    paths = listing.read_text().splitlines() if listing.exists() else []
    return sorted(Path(p) for p in paths if re.search(pattern, p) and Path(p).is_file())


def manuals_paragraphs():
    for path in sorted(PERL_POD.glob("*.pod")):
        yield from pod_paragraphs(path)
    for path in sorted(POSTGRES_HTML.glob("*.html")):
        yield from html_paragraphs(path)
    for path in sorted(GIT_DOCS.rglob("*.txt")):
        yield from asciidoc_paragraphs(path)
    for path in (JARGON, DEVIL):
        for p in paragraphs(path):
            if p := prose(p):
                yield p
    for path in sorted(FORTUNES.iterdir()):
        if path.is_file() and not path.suffix and not path.is_symlink():
            yield from fortune_paragraphs(path)
    for path in sorted(INFO.rglob("*.info*.gz")):
        if not path.name.startswith("python"):
            yield from info_paragraphs(path)
    for package in MAN_PACKAGES:
        for path in package_files(package, r"^/usr/share/man/man[1-8]/.*\.gz$"):
            yield from man_paragraphs(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "data" / "big"), help="output folder")
    args = parser.parse_args(argv)
    if sources_missing((PERL_POD, POSTGRES_HTML, GIT_DOCS, JARGON, DEVIL, FORTUNES, INFO / "emacs"), PACKAGES):
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines, words = write_lines(out / "manuals.txt", first_words(manuals_paragraphs(), WORDS))
    what = ("Perl, PostgreSQL, Git manuals, Jargon File, Devil's Dictionary, fortunes, GNU Info manuals, man pages; "
            "raw text, held out from tuning")
    print(f"wrote {out / 'manuals.txt'}: {lines:,} lines, {words:,} words ({what})")
    update_listing(out, [f"{out / 'manuals.txt'}\t{words}\t{lines}\t{what}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
