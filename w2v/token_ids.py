"""The encoded corpus on disk: a memory-mapped int32 id array, cached by content hash.

Built by one pass over the text (w2v/encode.py): words are numbered and counted as they
come, and the vocabulary (min_count, max_size, most frequent
first) is chosen from those counts; then the ids are mapped to the vocabulary's.

Layout of one cache entry (a folder named by the hash of corpus + tokenizer settings):
  tokenizer.json   the vocabulary, as an HF tokenizer (same ids for any text)
  ids.int32        every in-vocabulary token of the corpus, in order (UNK dropped,
                   as gensim drops words below min_count before windowing)
  sentences.npy    int64 offsets: sentence s is ids[sentences[s]:sentences[s+1]]
  counts.npy       int64 count of each id over the corpus (the trainer keeps none)
  meta.json        sizes, for the log and metrics, and a CRC-32 of each file above
The entry is built in a temp folder and renamed into place, so a crash never
leaves a half-written cache that a later run would trust. Opening an entry checks
it again (checksums, then shapes and the id range: 0.1 s in all for the 5.6M ids of data/big/tech.txt),
because the C kernel indexes its tables with these ids unchecked: a damaged or
stale entry is refused in one line that says to delete it, never trained on.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Tokenizer
from tqdm import tqdm

from .config import PhrasesConfig, VocabConfig
from .errors import W2VError
from .corpus import Corpus
from .encode import ProvisionalIds, choose_vocabulary, number_corpus, write_final_ids
from .kernels import load_phrases, load_words
from .phrases import RULES_VERSION, join_phrases
from .vocab import TOKENIZER_VERSION, tokenizer_for_vocab

if TYPE_CHECKING:  # w2v/continued.py imports torch: 130 MB and about a second the text pass does not need
    from .continued import EarlierRun


@dataclass
class TokenIds:
    tokenizer: Tokenizer
    tokenizer_path: Path
    ids: np.ndarray  # (n_tokens,) int32, memory-mapped
    sentences: np.ndarray  # (n_sentences + 1,) int64 offsets into ids
    counts: np.ndarray  # (vocab_size,) int64
    replaced_chars: int
    cache_hit: bool
    build_seconds: float = 0.0  # reading + encoding the corpus in this run (0 on a cache hit)
    replaced_by_file: dict[str, int] | None = None  # undecodable byte sequences replaced, per file (if any)

    @property
    def vocab_size(self) -> int:
        return len(self.counts)


# Bump when the layout or meta.json changes; it keys the cache, so older entries are rebuilt, not misread.
CACHE_FORMAT = 2  # 2: meta.json holds a checksum of every file
CHECKSUMMED_FILES = ("ids.int32", "sentences.npy", "counts.npy", "tokenizer.json")


def cache_key(corpus: Corpus, vocab: VocabConfig, phrases: PhrasesConfig | None = None,
              base: EarlierRun | None = None) -> str:
    # Without phrases (or an earlier run's vocabulary) the key is what it was before they existed:
    # those caches stay valid.
    joined = (f"|phrases{phrases.passes},{phrases.threshold!r},{phrases.min_count},{phrases.scoring},v{RULES_VERSION}"
              if phrases is not None and phrases.passes else "")
    extends = f"|extends{base.fingerprint}" if base is not None else ""
    h = hashlib.sha256(f"{corpus.fingerprint()}|{vocab.min_count}|{vocab.max_size}|{vocab.pre_tokenizer}"
                       f"|v{TOKENIZER_VERSION}|c{CACHE_FORMAT}{joined}{extends}".encode())
    return h.hexdigest()[:20]


def file_checksum(path: Path, piece: int = 1 << 24) -> str:
    """CRC-32 of a file, read in 16 MB pieces (about 1 GB/s: 30 ms for 30 MB of ids)."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(piece):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def _damaged(folder: Path, what: str) -> W2VError:
    return W2VError(f"token-id cache {folder} is damaged or stale ({what}); delete it (rm -r {folder}) "
                    f"and run again to rebuild it")


def id_range(ids: np.ndarray, piece: int = 1 << 24) -> tuple[int, int]:
    """(min, max) of an int32 array, in pieces so a memmap is not read into memory at once; (0, 0) if empty."""
    lo, hi = 0, 0
    for start in range(0, len(ids), piece):
        part = ids[start:start + piece]
        lo, hi = (int(part.min()), int(part.max())) if start == 0 else (min(lo, int(part.min())),
                                                                        max(hi, int(part.max())))
    return lo, hi


def rising(offsets: np.ndarray, piece: int = 1 << 20) -> bool:
    """True when no offset is below the one before it; in pieces, so a memmap is not read into memory at once.
    A piece's differences are a copy, 8 bytes an offset: 1M lines, 8 MB (16M lines took 128 MB, which
    grew the vocabulary phase's peak by 61 MB at 11M lines)."""
    return all(not (np.diff(offsets[start:start + piece + 1]) < 0).any() for start in range(0, len(offsets), piece))


def open_cache(folder: Path, tokenizer: Tokenizer | None = None) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray,
                                                                           Tokenizer]:
    """(meta, ids memmap, sentence offsets, counts, tokenizer) of a cache entry, checked; W2VError if damaged.

    Checks, cheapest first: every file's checksum against meta.json, the sizes against each
    other, sentence offsets rising from 0 to the token count, counts summing to it, and
    every id inside [0, vocab_size), so that no id can index past the end of a table.
    tokenizer: the one just saved as tokenizer.json by this process, so that it is not parsed back
    (3.9M words: several seconds); its file is checked like the others.
    """
    try:
        meta = json.loads((folder / "meta.json").read_text())
        sums = meta["checksums"]
        tokens, vocab_size = int(meta["tokens"]), int(meta["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _damaged(folder, f"meta.json unreadable: {type(exc).__name__}: {exc}") from None
    for name in CHECKSUMMED_FILES:
        try:
            actual = file_checksum(folder / name)
        except OSError as exc:
            raise _damaged(folder, f"{name}: {exc.strerror or exc}") from None
        if actual != sums.get(name):
            raise _damaged(folder, f"{name} checksum {actual}, meta.json says {sums.get(name)}")
    try:
        # Mapped, not read: 8 bytes a line, the one array of the cache that would grow with the corpus.
        sentences = np.load(folder / "sentences.npy", allow_pickle=False, mmap_mode="r")
        counts = np.load(folder / "counts.npy", allow_pickle=False)
        tokenizer = tokenizer or Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:  # noqa: BLE001 - matched checksums but unreadable: written by other code
        raise _damaged(folder, f"{type(exc).__name__}: {str(exc)[:100]}") from None
    if (folder / "ids.int32").stat().st_size != 4 * tokens:
        raise _damaged(folder, f"ids.int32 holds {(folder / 'ids.int32').stat().st_size} bytes, "
                               f"meta.json says {tokens} ids")
    if counts.shape != (vocab_size,) or tokenizer.get_vocab_size() != vocab_size or counts.sum() != tokens:
        raise _damaged(folder, f"{len(counts)} counts summing to {counts.sum()}, a tokenizer of "
                               f"{tokenizer.get_vocab_size()} words, meta.json: {vocab_size} words, {tokens} ids")
    if (sentences.ndim != 1 or sentences.dtype != np.int64 or len(sentences) < 1 or sentences[0] != 0
            or sentences[-1] != tokens or not rising(sentences)):
        raise _damaged(folder, "sentence offsets do not run from 0 to the number of ids")
    ids = np.memmap(folder / "ids.int32", dtype=np.int32, mode="r", shape=(tokens,)) if tokens \
        else np.zeros(0, np.int32)
    lo, hi = id_range(ids)
    if lo < 0 or hi >= vocab_size:
        raise _damaged(folder, f"ids range over [{lo}, {hi}], the vocabulary has {vocab_size} ids")
    return meta, ids, sentences, counts, tokenizer


def final_ids(provisional: ProvisionalIds, vocab: VocabConfig, base: EarlierRun | None):
    """(final id of each provisional id or -1, the provisional ids given new final ids, the words that
    keep theirs {word: id}, the vocabulary's size): a fresh vocabulary, or base's extended."""
    if base is not None:
        from .continued import extend_vocabulary

        final_of, new = extend_vocabulary(provisional, base.words, vocab.min_count, vocab.max_size)
        return final_of, new, dict(base.words), base.vocab_size + len(new)
    chosen = choose_vocabulary(provisional.counts, vocab.min_count, vocab.max_size)
    if len(chosen) == 0:
        raise W2VError(f"no word occurs at least vocab.min_count={vocab.min_count} times; "
                       f"lower vocab.min_count or give a larger corpus")
    final_of = np.full(len(provisional.words), -1, dtype=np.int32)
    final_of[chosen] = np.arange(1, len(chosen) + 1, dtype=np.int32)  # id 0 is [UNK]
    return final_of, chosen, {}, len(chosen) + 1


def _encode_to_disk(corpus: Corpus, vocab: VocabConfig, folder: Path, show_progress: bool, workers: int | None,
                    block_bytes: int, phrases: PhrasesConfig | None = None, log=print,
                    base: EarlierRun | None = None) -> tuple[dict, Tokenizer]:
    """The one text pass (w2v/encode.py), then the vocabulary (base's, extended: w2v/continued.py) and the
    final ids, into folder."""
    total = corpus.total_bytes()
    with tqdm(desc="reading corpus", total=total, unit="B", unit_scale=True, disable=not show_progress,
              leave=False) as bar:
        blocks = corpus.text_blocks(block_bytes, on_bytes=lambda done: bar.update(done - bar.n))
        provisional = number_corpus(blocks, folder / "provisional.int32", vocab.pre_tokenizer, workers=workers,
                                    total_bytes=total, kernel=load_words())
    try:
        if provisional.counts[1:].sum() == 0:
            raise W2VError("the corpus is empty or whitespace-only; give a text file with words in it")
        phrase_passes = []
        if phrases is not None and phrases.passes:
            provisional, phrase_passes = join_phrases(provisional, phrases, load_phrases(), log)
        final_of, chosen, known, vocab_size = final_ids(provisional, vocab, base)
        tokens, sentences = write_final_ids(provisional, final_of, folder / "ids.int32", folder / "sentences.npy")
    finally:
        provisional.path.unlink(missing_ok=True)
    counts = np.zeros(vocab_size, dtype=np.int64)  # this corpus's count of each id (0 for base words it lacks)
    counted = np.flatnonzero(final_of >= 0)
    counts[final_of[counted]] = provisional.counts[counted]
    # Taken in provisional-id order, the words' bytes are read front to back (0.5 -> 0.3 s for 776k of 10M).
    in_text_order = np.sort(chosen)
    chosen_words, chosen_ids = provisional.words.subset(in_text_order), final_of[in_text_order]
    # Every distinct word's bytes, offsets and counts, and the id map (800 MB for 27M distinct words) go
    # before the chosen words become Python strings (about 130 bytes each with the dict: 100 MB at 776k)
    # and the tokenizer is built, so that the two never add up.
    del provisional, final_of, chosen, in_text_order, counted
    words = known
    words.update(zip(chosen_words.tolist(), chosen_ids.tolist()))
    del chosen_words, chosen_ids
    tokenizer = tokenizer_for_vocab(words, vocab.pre_tokenizer)
    np.save(folder / "counts.npy", counts)
    meta = {"tokens": tokens, "sentences": sentences, "vocab_size": len(counts),
            "replaced_chars": int(corpus.replaced_chars), "replaced_by_file": dict(corpus.replaced_by_file),
            "pre_tokenizer": vocab.pre_tokenizer, "phrase_passes": [vars(p) for p in phrase_passes],
            "extends": None if base is None else str(base.run_dir)}
    return meta, tokenizer


# A build folder nothing has written to for this long belongs to an encoder that was killed:
# a live one appends to its files block after block.
STALE_BUILD_SECONDS = 3600


def remove_stale_builds(cache_dir: Path, older_than: float = STALE_BUILD_SECONDS) -> list[str]:
    """Remove the temp folders (.ids-*) of encoders killed before their rename; returns their names."""
    removed, now = [], time.time()
    for folder in cache_dir.glob(".ids-*"):
        try:
            last_write = max([folder.stat().st_mtime] + [f.stat().st_mtime for f in folder.iterdir()])
        except OSError:  # removed meanwhile by its own encoder or another run
            continue
        if now - last_write > older_than:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def load_or_build(corpus: Corpus, vocab: VocabConfig, cache_dir: Path, show_progress: bool = True,
                  log=print, workers: int | None = None, block_bytes: int = 1 << 20,
                  phrases: PhrasesConfig | None = None, base: EarlierRun | None = None) -> TokenIds:
    """Tokenise and encode the corpus once; later runs with the same inputs reuse the cache.

    workers: processes splitting text (None: one per core, one for a corpus under 8 MB). With the compiled
    splitter (w2v/encode.py), a reading thread and a C thread do the work, and worker processes are
    started only when there are more than two (for blocks that hold non-ASCII text).
    base: an earlier run (train.init_from) whose vocabulary this corpus extends.
    """
    folder = cache_dir / f"ids-{cache_key(corpus, vocab, phrases, base)}"
    hit = (folder / "meta.json").exists()
    seconds, built = 0.0, None
    if hit:
        log(f"token-id cache hit ({folder}): skipping tokenisation")
    else:
        log("reading the corpus once for the vocabulary and the token ids ...")
        started = time.perf_counter()
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_builds(cache_dir)
            tmp = Path(tempfile.mkdtemp(prefix=".ids-", dir=cache_dir))
        except OSError as exc:
            raise W2VError(f"cannot write the token-id cache in {cache_dir}: {exc.strerror or exc}; "
                           f"point cache_dir=... at a writable folder") from exc
        try:
            meta, built = _encode_to_disk(corpus, vocab, tmp, show_progress, workers, block_bytes, phrases, log, base)
            # Written by Python, not tokenizer.save (Rust), so that a full disk is an OSError like the rest.
            (tmp / "tokenizer.json").write_text(built.to_str(pretty=True), encoding="utf-8")
            meta["checksums"] = {name: file_checksum(tmp / name) for name in CHECKSUMMED_FILES}
            (tmp / "meta.json").write_text(json.dumps(meta))
            try:
                os.replace(tmp, folder)
            except OSError:
                if not (folder / "meta.json").exists():
                    raise
                shutil.rmtree(tmp)  # a concurrent run finished the same entry first; theirs is as good
        except OSError as exc:  # a full disk, a read-only cache_dir: no partial entry is left behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise W2VError(f"cannot write the token-id cache {folder}: {exc.strerror or exc}; free space "
                           f"or point cache_dir=... elsewhere") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        seconds = time.perf_counter() - started
        log(f"encoded {meta['tokens']:,} in-vocabulary tokens in {seconds:.1f}s; vocabulary "
            f"{meta['vocab_size'] - 1:,} words")
    meta, ids, sentences, counts, tokenizer = open_cache(folder, built)
    if meta["tokens"] == 0:
        raise W2VError("the corpus has no in-vocabulary tokens; give a larger corpus or lower vocab.min_count")
    return TokenIds(
        tokenizer=tokenizer,
        tokenizer_path=folder / "tokenizer.json",
        ids=ids,
        sentences=sentences,
        counts=counts,
        replaced_chars=meta["replaced_chars"],
        cache_hit=hit,
        build_seconds=seconds,
        replaced_by_file=meta.get("replaced_by_file") or None,
    )
