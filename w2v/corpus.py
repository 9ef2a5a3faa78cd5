"""Text sources: local files, a hub dataset, or the sample shipped in gensim.

Every source is read as a stream of text blocks of about a megabyte (`text_blocks`),
so a corpus of any size, and any line length, passes through in bounded memory.
- Local files (plain, .gz, .bz2) are read here in binary blocks cut after an ASCII
  space or line end, never inside a word or a UTF-8 character. HF `datasets`' text
  loader would hold each whole line in memory (a one-line corpus at once) and
  builds a Python string per line, so it is not used for local files.
- Hub datasets stream through HF `datasets`, their rows joined into blocks.
In a block, '\n' ends a line (a sentence: windows never cross it); a block may end
inside a line, which the next block continues.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .config import DataConfig, W2VError
from .atomic import atomic_path

REPLACEMENT_CHAR = "\ufffd"
SAMPLE_LEE = "lee_background.cor"
SAMPLE_WIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def _gensim_datapath(name: str) -> Path:
    """A file of gensim's test data. Found without importing gensim, which takes about a second."""
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise W2VError("data=sample needs the gensim package (pip install gensim), which ships the sample")
    return Path(list(spec.submodule_search_locations)[0]) / "test" / "test_data" / name


def _extract_wiki_text(xml_bz2: Path, out_path: Path) -> None:
    """Turn the bundled Wikipedia XML dump into plain text, one article per line."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    with bz2.open(xml_bz2, "rb") as xml, atomic_path(out_path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for _title, markup, _pageid in extract_pages(xml):
            text = filter_wiki(markup)
            # Drop leftover table/template debris; keep prose on one line per article.
            text = re.sub(r"[|=*#{}\[\]]+|'{2,}", " ", text)
            text = re.sub(r"\s+", " ", text).strip()
            if len(text.split()) >= 20 and not text.lower().startswith("redirect"):
                out.write(text + "\n")


def sample_paths(cache_dir: Path) -> list[Path]:
    """The default corpus: gensim's Wikipedia sample (as plain text) and the Lee background corpus."""
    wiki_txt = cache_dir / "sample" / "enwiki-sample.txt"
    if not wiki_txt.exists():
        wiki_txt.parent.mkdir(parents=True, exist_ok=True)
        _extract_wiki_text(_gensim_datapath(SAMPLE_WIKI), wiki_txt)
    return [wiki_txt, _gensim_datapath(SAMPLE_LEE)]


# Byte-order marks of the encodings that are not UTF-8; longest first (UTF-32LE starts like UTF-16LE).
WIDE_BOMS = [(b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
             (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")]


def wide_encoding(head: bytes) -> str | None:
    """'UTF-16' or 'UTF-32' when the first bytes of a file say so, else None.

    Read as UTF-8, such a file would not fail: every other byte is NUL, and the
    corpus would silently become single letters. Detected by its byte-order mark,
    or, without one, by NULs in nearly every other byte (UTF-16 of mostly ASCII text).
    """
    for bom, name in WIDE_BOMS:
        if head.startswith(bom):
            return name
    pairs = len(head) // 2
    if pairs >= 8:
        for offset in (0, 1):
            nul = head[offset::2][:pairs].count(0)
            other = head[1 - offset::2][:pairs].count(0)
            if nul >= 0.9 * pairs and other <= 0.1 * pairs:
                return "UTF-16"
    return None


def _head(path: Path, n: int = 4096) -> bytes:
    """The first n bytes of the text inside `path` (decompressed for .gz/.bz2); b"" if unreadable here."""
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    try:
        with opener(path, "rb") as f:
            return f.read(n)
    except (OSError, EOFError, zlib.error):
        return b""  # a damaged archive is reported, in one line, when it is read


def check_paths(paths: list[str]) -> list[Path]:
    """Resolve user-given corpus paths, failing with one clear line on the first bad one."""
    if not paths:
        raise W2VError("data.paths is empty; give files with data.paths=[a.txt,b.txt]")
    resolved = []
    for p in paths:
        path = Path(p).expanduser()
        if not path.exists():
            raise W2VError(f"corpus file not found: {p}")
        if path.is_dir():
            raise W2VError(f"corpus path is a directory, not a text file: {p}")
        encoding = wide_encoding(_head(path))
        if encoding is not None:
            raise W2VError(f"corpus file {p} is {encoding} text; w2v reads UTF-8. Convert it first, "
                           f"e.g. iconv -f {encoding} -t UTF-8 {p} > {path.stem}.utf8{path.suffix}")
        resolved.append(path.resolve())
    return resolved


@dataclass
class Corpus:
    """A stream of text lines. `replaced_chars` counts undecodable bytes replaced so far."""

    kind: str
    paths: list[Path] = field(default_factory=list)
    hub: DataConfig | None = None
    max_lines: int | None = None
    replaced_chars: int = 0

    def fingerprint(self) -> str:
        """A hash that changes whenever the text could have changed (paths, sizes, mtimes, hub ids)."""
        h = hashlib.sha256()
        h.update(f"{self.kind}|{self.max_lines}".encode())
        for p in self.paths:
            st = os.stat(p)
            h.update(f"|{p}|{st.st_size}|{st.st_mtime_ns}".encode())
        if self.hub is not None:
            h.update(f"|{self.hub.name}|{self.hub.config}|{self.hub.split}|{self.hub.column}".encode())
        return h.hexdigest()[:16]

    def _dataset(self):
        from datasets import load_dataset

        try:
            if self.kind == "hub":
                ds = load_dataset(self.hub.name, self.hub.config, split=self.hub.split, streaming=True)
                if self.hub.column != "text":
                    ds = ds.select_columns([self.hub.column]).rename_column(self.hub.column, "text")
                return ds
            # 'replace' keeps a corpus with stray bad bytes usable; we count the damage.
            return load_dataset("text", data_files=[str(p) for p in self.paths], split="train",
                                streaming=True, encoding_errors="replace")
        except W2VError:
            raise
        except Exception as exc:  # datasets raises many types for unreachable hubs / bad names
            where = f"hub dataset {self.hub.name!r}" if self.kind == "hub" else "corpus files"
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise W2VError(f"cannot load {where}: {first_line}") from exc

    def total_bytes(self) -> int | None:
        """Bytes on disk of the files (compressed where they are), None for a hub dataset."""
        return sum(os.stat(p).st_size for p in self.paths) if self.kind != "hub" else None

    def text_blocks(self, block_bytes: int = 1 << 20, on_bytes=None) -> Iterator[str]:
        """The corpus as blocks of text of about block_bytes; '\n' ends every line, the last one too.

        on_bytes(n): called with the bytes read from disk so far, for a progress bar.
        """
        self.replaced_chars = 0
        lines_left = [self.max_lines]  # shared by all files, as one corpus
        if self.kind == "hub":
            blocks = self._hub_blocks(block_bytes)
        else:
            blocks = (block for path in self.paths for block in self._file_blocks(path, block_bytes, on_bytes))
        for block in blocks:
            if lines_left[0] is not None:
                block, lines_left[0] = _first_lines(block, lines_left[0])
            self.replaced_chars += block.count(REPLACEMENT_CHAR)
            if block:
                yield block
            if lines_left[0] == 0:
                return

    def _file_blocks(self, path: Path, block_bytes: int, on_bytes) -> Iterator[str]:
        opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
        done_before = sum(os.stat(p).st_size for p in self.paths[:self.paths.index(path)])
        try:
            with open(path, "rb") as raw, (opener(raw, "rb") if opener is not open else raw) as f:
                rest, last = b"", b"\n"
                while True:
                    data = f.read(block_bytes)
                    if on_bytes is not None:
                        on_bytes(done_before + raw.tell())
                    if not data:
                        break
                    data = rest + data
                    cut = _cut_point(data, force=len(data) >= 16 * block_bytes)
                    rest = data[cut:]
                    if cut:
                        last = data[cut - 1:cut]
                        yield data[:cut].decode("utf-8", errors="replace")
                if rest:
                    last = rest[-1:]
                    yield rest.decode("utf-8", errors="replace")
                if last != b"\n":
                    yield "\n"  # a file's last line ends with the file
        except (OSError, EOFError, zlib.error) as exc:  # EOFError: a truncated .gz/.bz2
            raise W2VError(f"cannot read corpus {path}: {exc}") from exc

    def _hub_blocks(self, block_bytes: int) -> Iterator[str]:
        lines, size = [], 0
        for batch in self.line_batches():
            for line in batch:
                # A row may hold several lines; each ends a sentence, as in a file.
                lines.append(line)
                size += len(line)
                if size >= block_bytes:
                    yield "\n".join(lines) + "\n"
                    lines, size = [], 0
        if lines:
            yield "\n".join(lines) + "\n"

    def line_batches(self, batch_lines: int = 2000) -> Iterator[list[str]]:
        """Yield lists of raw text lines, streaming; counts replacement characters as it goes."""
        ds = self._dataset()
        self.replaced_chars = 0
        seen = 0
        try:
            for batch in ds.iter(batch_size=batch_lines):
                lines = [t if isinstance(t, str) else "" for t in batch["text"]]
                if self.max_lines is not None:
                    lines = lines[: max(0, self.max_lines - seen)]
                seen += len(lines)
                self.replaced_chars += sum(t.count(REPLACEMENT_CHAR) for t in lines)
                if lines:
                    yield lines
                if self.max_lines is not None and seen >= self.max_lines:
                    return
        except KeyError as exc:
            raise W2VError(f"hub dataset has no column {self.hub.column!r}; set data.column") from exc
        except (OSError, ConnectionError, EOFError, zlib.error) as exc:  # EOFError: a truncated .gz/.bz2
            raise W2VError(f"cannot read corpus: {exc}") from exc


def _cut_point(data: bytes, force: bool) -> int:
    """Where to end a block: after its last line end, else after its last ASCII space or tab
    (inside a long line, between words). With neither, 0 (read on), unless force: then at the
    last UTF-8 character boundary, which may split a word of 16 blocks without a space."""
    cut = data.rfind(b"\n") + 1
    if cut == 0:
        cut = max(data.rfind(b" "), data.rfind(b"\t"), data.rfind(b"\r")) + 1
    if cut == 0 and force:
        cut = len(data)
        while cut > 0 and data[cut - 1] & 0xC0 == 0x80:  # back over continuation bytes
            cut -= 1
        if cut > 0 and data[cut - 1] >= 0xC0:  # and the lead byte of that character
            cut -= 1
        cut = cut or len(data)
    return cut


def _first_lines(block: str, wanted: int) -> tuple[str, int]:
    """(the part of block holding at most `wanted` line ends, how many are still wanted after it)."""
    ends = block.count("\n")
    if ends < wanted:
        return block, wanted - ends
    cut = -1
    for _ in range(wanted):
        cut = block.index("\n", cut + 1)
    return block[:cut + 1], 0


def open_corpus(cfg: DataConfig, cache_dir: Path) -> Corpus:
    """Build the Corpus for a validated DataConfig."""
    if cfg.kind == "sample":
        return Corpus(kind="sample", paths=sample_paths(cache_dir), max_lines=cfg.max_lines)
    if cfg.kind == "files":
        return Corpus(kind="files", paths=check_paths(cfg.paths), max_lines=cfg.max_lines)
    if cfg.kind == "hub":
        return Corpus(kind="hub", hub=cfg, max_lines=cfg.max_lines)
    raise W2VError(f"unknown data kind {cfg.kind!r}")
