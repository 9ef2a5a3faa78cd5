"""Text sources: local files, a hub dataset, or the sample shipped in gensim.

Everything is read through HF `datasets` in streaming mode, so a corpus of any
size passes through in bounded memory, a batch of lines at a time.
"""
from __future__ import annotations

import bz2
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
    from gensim.test.utils import datapath  # the files ship inside the gensim package
    return Path(datapath(name))


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


def open_corpus(cfg: DataConfig, cache_dir: Path) -> Corpus:
    """Build the Corpus for a validated DataConfig."""
    if cfg.kind == "sample":
        return Corpus(kind="sample", paths=sample_paths(cache_dir), max_lines=cfg.max_lines)
    if cfg.kind == "files":
        return Corpus(kind="files", paths=check_paths(cfg.paths), max_lines=cfg.max_lines)
    if cfg.kind == "hub":
        return Corpus(kind="hub", hub=cfg, max_lines=cfg.max_lines)
    raise W2VError(f"unknown data kind {cfg.kind!r}")
