"""The encoded corpus on disk: a memory-mapped int32 id array, cached by content hash.

Layout of one cache entry (a folder named by the hash of corpus + tokenizer settings):
  tokenizer.json   the trained vocabulary
  ids.int32        every in-vocabulary token of the corpus, in order (UNK dropped,
                   as gensim drops words below min_count before windowing)
  sentences.npy    int64 offsets: sentence s is ids[sentences[s]:sentences[s+1]]
  counts.npy       int64 count of each id over the corpus (the trainer keeps none)
  meta.json        sizes, for the log and metrics
The entry is built in a temp folder and renamed into place, so a crash never
leaves a half-written cache that a later run would trust.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tqdm import tqdm

from .config import VocabConfig, W2VError
from .corpus import Corpus
from .vocab import TOKENIZER_VERSION, UNK, train_tokenizer


@dataclass
class TokenIds:
    tokenizer: Tokenizer
    tokenizer_path: Path
    ids: np.ndarray  # (n_tokens,) int32, memory-mapped
    sentences: np.ndarray  # (n_sentences + 1,) int64 offsets into ids
    counts: np.ndarray  # (vocab_size,) int64
    replaced_chars: int
    cache_hit: bool

    @property
    def vocab_size(self) -> int:
        return len(self.counts)


def cache_key(corpus: Corpus, vocab: VocabConfig) -> str:
    h = hashlib.sha256(f"{corpus.fingerprint()}|{vocab.min_count}|{vocab.max_size}|v{TOKENIZER_VERSION}".encode())
    return h.hexdigest()[:20]


def _encode_to_disk(corpus: Corpus, tokenizer: Tokenizer, folder: Path, show_progress: bool) -> dict:
    unk_id = tokenizer.token_to_id(UNK)
    vocab_size = tokenizer.get_vocab_size()
    counts = np.zeros(vocab_size, dtype=np.int64)
    sentence_lengths: list[int] = []
    n_tokens = 0
    with open(folder / "ids.int32", "wb") as out, \
            tqdm(desc="encoding", unit=" lines", disable=not show_progress, leave=False) as bar:
        for lines in corpus.line_batches():
            for enc in tokenizer.encode_batch(lines, add_special_tokens=False):
                ids = np.asarray(enc.ids, dtype=np.int32)
                ids = ids[ids != unk_id]
                if len(ids) == 0:
                    continue
                out.write(ids.tobytes())
                counts += np.bincount(ids, minlength=vocab_size)
                sentence_lengths.append(len(ids))
                n_tokens += len(ids)
            bar.update(len(lines))
    sentences = np.zeros(len(sentence_lengths) + 1, dtype=np.int64)
    np.cumsum(sentence_lengths, out=sentences[1:])
    np.save(folder / "sentences.npy", sentences)
    np.save(folder / "counts.npy", counts)
    return {"tokens": int(n_tokens), "sentences": len(sentence_lengths), "vocab_size": int(vocab_size),
            "replaced_chars": int(corpus.replaced_chars)}


def load_or_build(corpus: Corpus, vocab: VocabConfig, cache_dir: Path, show_progress: bool = True,
                  log=print) -> TokenIds:
    """Tokenise and encode the corpus once; later runs with the same inputs reuse the cache."""
    folder = cache_dir / f"ids-{cache_key(corpus, vocab)}"
    hit = (folder / "meta.json").exists()
    if hit:
        log(f"token-id cache hit ({folder}): skipping tokenisation")
    else:
        log("training the vocabulary (pass 1/2) ...")
        tokenizer = train_tokenizer(corpus.line_batches(), vocab.min_count, vocab.max_size)
        if tokenizer.get_vocab_size() <= 1:
            if corpus.replaced_chars == 0 and _is_blank(corpus):
                raise W2VError("the corpus is empty or whitespace-only; give a text file with words in it")
            raise W2VError(f"no word occurs at least vocab.min_count={vocab.min_count} times; "
                           f"lower vocab.min_count or give a larger corpus")
        log(f"vocabulary: {tokenizer.get_vocab_size() - 1} words; encoding the corpus (pass 2/2) ...")
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".ids-", dir=cache_dir))
        try:
            tokenizer.save(str(tmp / "tokenizer.json"))
            meta = _encode_to_disk(corpus, tokenizer, tmp, show_progress)
            (tmp / "meta.json").write_text(json.dumps(meta))
            if folder.exists():  # a concurrent run finished first; theirs is as good as ours
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    meta = json.loads((folder / "meta.json").read_text())
    if meta["tokens"] == 0:
        raise W2VError("the corpus has no in-vocabulary tokens; give a larger corpus or lower vocab.min_count")
    ids = np.memmap(folder / "ids.int32", dtype=np.int32, mode="r", shape=(meta["tokens"],))
    return TokenIds(
        tokenizer=Tokenizer.from_file(str(folder / "tokenizer.json")),
        tokenizer_path=folder / "tokenizer.json",
        ids=ids,
        sentences=np.load(folder / "sentences.npy"),
        counts=np.load(folder / "counts.npy"),
        replaced_chars=meta["replaced_chars"],
        cache_hit=hit,
    )


def _is_blank(corpus: Corpus) -> bool:
    for lines in corpus.line_batches():
        if any(line.strip() for line in lines):
            return False
    return True
