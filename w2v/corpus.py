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
import codecs
import gzip
import hashlib
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .config import DataConfig
from .errors import W2VError, first_line
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


# A file whose head holds at least this share of characters that text does not hold is refused.
# Measured on 64 KB heads (tests/test_disk_trust.py): binaries 26-89% (sqlite databases 26-36%,
# zip/png/jpg/pdf/whl/npz and compressed or raw float32 models 52-59%, ELF 72-82%, man-db 50%,
# .mo catalogues 47%, an ids.int32 89%); UTF-8 text 0%, text with a few broken bytes 0.2%,
# ANSI-coloured logs 3.5%, Latin-1 or cp1252 prose read as UTF-8 6-13% (trained, with a warning).
NONTEXT_SHARE = 0.20
HEAD_BYTES = 1 << 16
# Characters text does not hold: C0 controls but tab, LF, VT, FF, CR; DEL; C1 controls; U+FFFD (what an
# undecodable byte becomes). A lone NUL is let through as a separator (NUL-separated lists are text).
_NONTEXT = re.compile("[\x01-\x08\x0e-\x1f\x7f-\x9f\ufffd]|\x00{2,}")


# File signatures of common binary formats. A database or archive whose pages hold much text can fall
# below NONTEXT_SHARE (a SQLite file of English sentences: 17%), so these are refused by signature too.
# Only signatures no text starts with (a control or non-ASCII byte in them, or %PDF-): formats whose
# magic is plain letters (bzip2 "BZh", GIF, Parquet) are compressed or binary and fail the share anyway.
SIGNATURES = [(b"SQLite format 3\x00", "a SQLite database"), (b"PK\x03\x04", "a zip archive (or .docx, .jar, "
              ".whl, a torch.save file)"), (b"\x1f\x8b", "gzip data (name it .gz to have it decompressed)"),
              (b"\xfd7zXZ\x00", "xz data"), (b"\x28\xb5\x2f\xfd", "zstd data"),
              (b"7z\xbc\xaf\x27\x1c", "a 7z archive"), (b"Rar!\x1a\x07", "a rar archive"),
              (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
              (b"%PDF-", "a PDF document"), (b"\x7fELF", "an ELF executable or library"),
              (b"\x93NUMPY", "a NumPy array"), (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
              (b"\xca\xfe\xba\xbe", "a Java class or Mach-O file")]


def binary_signature(head: bytes) -> str | None:
    """What a file is when its first bytes carry a binary format's signature, else None."""
    if head[257:262] == b"ustar":  # a tar archive's signature sits in its first header, not at the start
        return "a tar archive"
    return next((what for magic, what in SIGNATURES if head.startswith(magic)), None)


def nontext_share(head: bytes) -> float:
    """Share of the characters of head (read as UTF-8) that text does not hold; see NONTEXT_SHARE."""
    # final=False: a character cut by the end of the head is left out, not counted as undecodable.
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head, final=False)
    if not text:
        return 0.0
    return sum(len(m) for m in _NONTEXT.findall(text)) / len(text)


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
        head = _head(path, HEAD_BYTES)
        encoding = wide_encoding(head[:4096])
        if encoding is not None:
            raise W2VError(f"corpus file {p} is {encoding} text; w2v reads UTF-8. Convert it first, "
                           f"e.g. iconv -f {encoding} -t UTF-8 {p} > {path.stem}.utf8{path.suffix}")
        share, signature = nontext_share(head), binary_signature(head)
        if share >= NONTEXT_SHARE or signature:
            measured = (f"{share:.0%} of its first {HEAD_BYTES // 1024} KB" if len(head) >= HEAD_BYTES
                        else f"{share:.0%} of its {len(head)} bytes")
            if signature:
                raise W2VError(f"corpus file {p} is not text: it is {signature} ({measured} are undecodable bytes "
                               f"or control characters); give text files (.txt, .gz, .bz2)")
            raise W2VError(f"corpus file {p} is not text: {measured} are undecodable bytes or control characters "
                           f"(text has under {NONTEXT_SHARE:.0%}); if it is text in another encoding, convert it "
                           f"first: iconv -f ENCODING -t UTF-8 {p} > {path.stem}.utf8{path.suffix}")
        resolved.append(path.resolve())
    return resolved


@dataclass
class Corpus:
    """A stream of text lines. `replaced_chars` counts undecodable bytes replaced so far
    (`replaced_by_file`: the same per local file, only files with some)."""

    kind: str
    paths: list[Path] = field(default_factory=list)
    hub: DataConfig | None = None
    max_lines: int | None = None
    replaced_chars: int = 0
    replaced_by_file: dict[str, int] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A hash that changes whenever the text could have changed (paths, sizes, mtimes, hub ids)."""
        h = hashlib.sha256()
        h.update(f"{self.kind}|{self.max_lines}".encode())
        for p in self.paths:
            st = os.stat(p)
            h.update(f"|{p}|{st.st_size}|{st.st_mtime_ns}".encode())
        if self.hub is not None:
            h.update(f"|{self.hub.name}|{self.hub.config}|{self.hub.split}|{self.hub.column}"
                     f"|{self.hub.revision}|{self.hub_commit()}".encode())
        return h.hexdigest()[:16]

    def hub_commit(self) -> str:
        """The commit of the hub dataset that would be read (data.revision resolved by `datasets`).

        Online this asks the hub which commit data.revision (default: main) is now; offline,
        `datasets` answers from its cache. Either way a dataset that changed on the hub gets a
        new token-id cache instead of the stale one.
        """
        from datasets import load_dataset_builder

        try:
            builder = load_dataset_builder(self.hub.name, self.hub.config, revision=self.hub.revision)
        except Exception as exc:  # noqa: BLE001 - datasets raises many types for unreachable hubs / bad names
            raise _hub_error(self.hub, exc) from exc
        return str(getattr(builder, "hash", None) or "")

    def _dataset(self):
        from datasets import load_dataset

        try:
            if self.kind == "hub":
                ds = load_dataset(self.hub.name, self.hub.config, split=self.hub.split, streaming=True,
                                  revision=self.hub.revision)
                if self.hub.column != "text":
                    ds = ds.select_columns([self.hub.column]).rename_column(self.hub.column, "text")
                return ds
            # 'replace' keeps a corpus with stray bad bytes usable; we count the damage.
            return load_dataset("text", data_files=[str(p) for p in self.paths], split="train",
                                streaming=True, encoding_errors="replace")
        except W2VError:
            raise
        except Exception as exc:  # datasets raises many types for unreachable hubs / bad names
            if self.kind == "hub":
                raise _hub_error(self.hub, exc) from exc
            raise W2VError(f"cannot load corpus files: {first_line(exc)}") from exc

    def total_bytes(self) -> int | None:
        """Bytes on disk of the files (compressed where they are), None for a hub dataset."""
        return sum(os.stat(p).st_size for p in self.paths) if self.kind != "hub" else None

    def text_blocks(self, block_bytes: int = 1 << 20, on_bytes=None) -> Iterator[str]:
        """The corpus as blocks of text of about block_bytes; '\n' ends every line, the last one too.

        on_bytes(n): called with the bytes read from disk so far, for a progress bar.
        """
        self.replaced_chars, self.replaced_by_file = 0, {}
        lines_left = self.max_lines  # shared by all files, as one corpus
        if self.kind == "hub":
            sources = [(None, self._hub_blocks(block_bytes))]
        else:
            sources = [(str(path), self._file_blocks(path, block_bytes, on_bytes)) for path in self.paths]
        for name, blocks in sources:
            for block in blocks:
                if lines_left is not None:
                    block, lines_left = _first_lines(block, lines_left)
                replaced = block.count(REPLACEMENT_CHAR)
                if replaced:
                    self.replaced_chars += replaced
                    if name is not None:
                        self.replaced_by_file[name] = self.replaced_by_file.get(name, 0) + replaced
                if block:
                    yield block
                if lines_left == 0:
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
        # Raw rows: text_blocks counts replaced characters and applies max_lines, once, on the blocks.
        for batch in self._rows():
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
        self.replaced_chars = 0
        seen = 0
        for lines in self._rows(batch_lines):
            if self.max_lines is not None:
                lines = lines[: max(0, self.max_lines - seen)]
            seen += len(lines)
            self.replaced_chars += sum(t.count(REPLACEMENT_CHAR) for t in lines)
            if lines:
                yield lines
            if self.max_lines is not None and seen >= self.max_lines:
                return

    def _rows(self, batch_lines: int = 2000) -> Iterator[list[str]]:
        """The dataset's text column, batch_lines rows at a time, as they come (no counting, no limit)."""
        ds = self._dataset()
        try:
            for batch in ds.iter(batch_size=batch_lines):
                yield [t if isinstance(t, str) else "" for t in batch["text"]]
        except KeyError as exc:
            raise W2VError(f"hub dataset has no column {self.hub.column!r}; set data.column") from exc
        except (OSError, ConnectionError, EOFError, zlib.error) as exc:  # EOFError: a truncated .gz/.bz2
            raise W2VError(f"cannot read corpus: {exc}") from exc


def _hub_error(hub: DataConfig, exc: Exception) -> W2VError:
    return W2VError(f"cannot load hub dataset {hub.name!r}: {first_line(exc)}")


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
