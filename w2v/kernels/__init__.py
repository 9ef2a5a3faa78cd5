"""Compiled CPU kernels: C sources built with the system compiler at first use, cached per machine.

`load_sgns()` returns an `SgnsKernel` (ctypes over w2v/kernels/sgns.c), `load_words()` a
`WordsKernel` (w2v/kernels/words.py, over words.c), `load_phrases()` a `PairsKernel`
(w2v/kernels/phrases.py, over phrases.c), or None when no compiler is available,
the build fails, or W2V_NO_C=1 is set; callers then fall back to torch ops or to Python.
Nothing here imports torch, so the text pass can load its kernel without it.
Each shared library is cached under ~/.cache/w2v/kernels (W2V_KERNEL_CACHE
overrides it), keyed by a hash of its source, the compiler, the flags and the CPU, so
it is built once per machine (about a second) and rebuilt only when one of those changes.
Loading a library runs its code, so the cache is trusted only when this user alone can
write to it: a folder or library owned by someone else, or writable by group or others, is
passed over (with one warning) for a private temp folder, removed once the library is loaded.
The SHA-256 of each library is recorded beside it when it is built and checked before it is
loaded (dlopen of a truncated library can kill the process with SIGBUS): a mismatch rebuilds
it. A cached library that fails to load is rebuilt once; if that fails too, the warning says why.
ctypes releases the GIL during a call, so Python threads keep preparing data meanwhile.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger("w2v")

SOURCE = Path(__file__).with_name("sgns.c")
WORDS_SOURCE = Path(__file__).with_name("words.c")
PHRASES_SOURCE = Path(__file__).with_name("phrases.c")
# Fast float maths without -ffast-math itself: linking with it would switch the whole
# process (numpy, torch) to flush-denormals-to-zero. Reassociation lets dot products vectorise.
OPT_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math", "-fno-signed-zeros",
             "-ffp-contract=fast", "-funroll-loops"]
LINK_FLAGS = ["-fPIC", "-shared", "-pthread"]
MAX_NEGATIVE = 64  # the kernel keeps one example's negatives on the stack (MAX_NEGATIVE_AHEAD in sgns.c)
_lock = threading.Lock()
_loaded: dict[str, object] = {}

_ptr, _i64, _f32, _f64, _int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_double, ctypes.c_int


def cache_dir() -> Path:
    if os.environ.get("W2V_KERNEL_CACHE"):
        return Path(os.environ["W2V_KERNEL_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "w2v" / "kernels"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_signature() -> str:
    """What -march=native depends on: the CPU model and feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith(("flags", "model name", "Features"))]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return platform.processor()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hash_file(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def hash_matches(library: Path) -> bool:
    """Whether the library's bytes are those recorded when it was built (and the record is this user's)."""
    record = _hash_file(library)
    try:
        return not_private(record) is None and record.read_text().strip() == _sha256(library)
    except OSError:
        return False


def not_private(path: Path) -> str | None:
    """Why someone other than this user could have put or changed `path` (None: nobody else can).

    Refused: a symlink, a path owned by another user, or one that group or others may write to.
    """
    if not hasattr(os, "getuid"):  # no POSIX owners (Windows): nothing to check against
        return None
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if st.st_uid != os.getuid():
        return f"it belongs to uid {st.st_uid}, not to this user ({os.getuid()})"
    if st.st_mode & 0o022:
        return f"group or others may write to it (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _build(compiler: str, out: Path, errors: list[str] | None = None, source: Path = SOURCE) -> bool:
    """Compile source into `out` atomically; try -march=native first, then portable flags.

    errors: receives the compiler's first error line of each failed attempt.
    """
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for arch in (["-march=native"], []):
        fd, tmp = tempfile.mkstemp(prefix=f".{source.stem}-", suffix=".so", dir=out.parent)
        os.close(fd)
        cmd = [compiler, *OPT_FLAGS, *arch, *LINK_FLAGS, str(source), "-o", tmp, "-lm"]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            result = None
            log.debug(f"kernel build failed: {exc}")
        if result is not None and result.returncode == 0:
            # The hash first: a reader that sees the new hash beside the old library rebuilds, harmlessly.
            with open(tmp + ".sha256", "w") as f:
                f.write(_sha256(Path(tmp)))
            os.replace(tmp + ".sha256", _hash_file(out))
            os.replace(tmp, out)  # a concurrent build of the same key writes identical bytes
            return True
        if result is not None:
            log.debug(f"kernel build failed ({' '.join(cmd)}): {result.stderr.strip()[:500]}")
            if errors is not None:
                errors.append(next((line for line in result.stderr.splitlines() if "error" in line),
                                   result.stderr.strip()[:200]))
        Path(tmp).unlink(missing_ok=True)
    return False


def _key(compiler: str, source: Path = SOURCE) -> str | None:
    """Hash of everything the library's bytes depend on; None when the compiler cannot say its version."""
    version = _compiler_version(compiler)
    if version is None:
        return None
    return hashlib.sha256("\n".join([source.read_text(), compiler, version, " ".join(OPT_FLAGS + LINK_FLAGS),
                                     platform.machine(), _cpu_signature()]).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _compiler_version(compiler: str) -> str | None:
    """`compiler --version`, asked once per process (a run loads two kernels)."""
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None


def _tighten(folder: Path) -> None:
    """Make this user's own cache folder private when group or others may write to it (a umask of 002
    makes such folders). Safe: what others may have put there is not this user's, or lacks the recorded
    hash, so it is refused or rebuilt, never loaded."""
    if not hasattr(os, "getuid"):
        return
    st = folder.lstat()
    if not stat.S_ISLNK(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o022:
        folder.chmod(0o700)
        log.warning(f"kernel cache {folder} was writable by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
                    f"made it private (700): a library found there is loaded only if it is yours and unchanged")


def _private_build(compiler: str, name: str, errors: list[str], source: Path = SOURCE) -> Path | None:
    """Build into a new private temp folder (mode 0700); the caller removes the folder."""
    folder = Path(tempfile.mkdtemp(prefix="w2v-kernels-"))
    if _build(compiler, folder / name, errors, source):
        return folder / name
    shutil.rmtree(folder, ignore_errors=True)
    return None


def library_path(rebuild: bool = False, errors: list[str] | None = None, private: bool = False,
                 source: Path = SOURCE) -> Path | None:
    """The cached shared library for this machine, building it if needed; None when that is impossible.

    rebuild: build again even when the cache has it (the cached one failed to load); private:
    build outside the cache (it is on a noexec mount). A library built outside the cache (also
    when the cache is not private, or not writable) lies alone in a w2v-kernels-* temp folder,
    which the caller removes once it has loaded it.
    """
    errors = [] if errors is None else errors
    compiler = _compiler()
    if compiler is None or not source.exists():
        errors.append("no C compiler (cc, gcc or clang) found" if compiler is None else f"{source} is missing")
        return None
    key = _key(compiler, source)
    if key is None:
        errors.append(f"{compiler} --version failed")
        return None
    folder = cache_dir()
    path = folder / f"{source.stem}-{key}.so"
    if private:
        return _private_build(compiler, path.name, errors, source)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _tighten(folder)
        why = not_private(folder) or (not_private(path) if path.exists() or path.is_symlink() else None)
    except OSError as exc:  # e.g. a read-only home: build in a private temp dir instead
        log.debug(f"kernel cache {folder} not usable: {exc}")
        return _private_build(compiler, path.name, errors, source)
    if why is not None:
        where = folder if not_private(folder) else path
        log.warning(f"kernel cache {where} is not private ({why}), so a library there could be anyone's: "
                    f"building the C kernel in a private temp folder instead (set W2V_KERNEL_CACHE to a folder "
                    f"only you can write to)")
        return _private_build(compiler, path.name, errors, source)
    if path.exists() and not rebuild:
        if hash_matches(path):
            return path
        log.debug(f"{path} does not match the hash recorded when it was built: rebuilding it")
    try:
        return path if _build(compiler, path, errors, source) else None
    except OSError as exc:
        log.debug(f"kernel cache {folder} not writable: {exc}")
        return _private_build(compiler, path.name, errors, source)


def _load(path: Path, wrap=None):
    """Load the library at path (wrapped by `wrap`, default SgnsKernel); a temp build folder is removed once
    the library is mapped."""
    try:
        return (wrap or SgnsKernel)(ctypes.CDLL(str(path)))
    finally:
        if path.parent.name.startswith("w2v-kernels-"):
            shutil.rmtree(path.parent, ignore_errors=True)


class SgnsKernel:
    """Typed wrappers over the C entry points. Tables are contiguous float32 CPU tensors."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        lib.w2v_init_tables.argtypes, lib.w2v_init_tables.restype = [], None
        lib.w2v_build_alias.argtypes, lib.w2v_build_alias.restype = [_ptr, _i64, _ptr, _ptr], _int
        lib.w2v_train_chunk.argtypes = [_int, _ptr, _ptr, _i64, _ptr, _ptr, _ptr, _i64, _i64, _i64, _i64, _ptr, _ptr,
                                        _i64,
                                        _f32, _f32, ctypes.c_uint64, _int, _ptr, _ptr, _ptr, _ptr, _ptr, _i64,
                                        ctypes.POINTER(_f64), ctypes.POINTER(_i64)]
        lib.w2v_train_chunk.restype = _int
        lib.w2v_train_examples.argtypes = [_int, _ptr, _ptr, _i64, _ptr, _ptr, _ptr, _i64, _ptr, _i64, _i64, _f32,
                                           _ptr, _ptr, _ptr, _i64]
        lib.w2v_train_examples.restype = _f64
        lib.w2v_draw_noise.argtypes = [_ptr, _ptr, _i64, ctypes.c_uint64, _i64, _ptr]
        lib.w2v_draw_noise.restype = None
        lib.w2v_changed_rows.argtypes = [_ptr, _ptr, _i64, _i64, _ptr, _ptr]
        lib.w2v_changed_rows.restype = _i64
        lib.w2v_init_tables()

    def build_alias(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Alias table (threshold uint32 (V,), alias int32 (V,)) for sampling proportional to weights."""
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        threshold = np.zeros(len(weights), dtype=np.uint32)
        alias = np.zeros(len(weights), dtype=np.int32)
        if self.lib.w2v_build_alias(weights.ctypes.data, len(weights), threshold.ctypes.data, alias.ctypes.data):
            raise MemoryError("cannot allocate the alias table")
        return threshold, alias

    def draw_noise(self, alias_table: tuple[np.ndarray, np.ndarray], n: int, seed: int) -> np.ndarray:
        threshold, alias = alias_table
        draws = np.empty(n, dtype=np.int64)
        self.lib.w2v_draw_noise(threshold.ctypes.data, alias.ctypes.data, len(threshold), seed, n, draws.ctypes.data)
        return draws

    def train_chunk(self, cbow: bool, in_table: torch.Tensor, out_table: torch.Tensor, ids: np.ndarray,
                    sentence: np.ndarray, window: np.ndarray, negative: int,
                    alias_table: tuple[np.ndarray, np.ndarray], lr_from: float, lr_to: float, seed: int,
                    threads: int, centres: tuple[int, int] | None = None,
                    marks: tuple[torch.Tensor, torch.Tensor] | None = None, tree=None) -> tuple[float, int]:
        """Train the centres[0]..centres[1]-1 of a chunk (default: all) in place; returns (summed loss, examples).

        Tokens outside `centres` serve only as context (a window carried across a chunk cut).
        marks: (input, output) uint8 tensors of one byte per table row; every row written is set to 1.
        tree: None (negative sampling), or a w2v.huffman.HuffmanTree over the same vocabulary
        (hierarchical softmax; `negative` is then unused).
        """
        threshold, alias = alias_table
        if min(in_table.shape[0], out_table.shape[0]) < len(threshold):
            raise ValueError(f"tables of {in_table.shape[0]} and {out_table.shape[0]} rows for a noise table over "
                             f"{len(threshold)} words: the kernel checks ids against the noise table's length")
        tree_args = _tree_args(tree, len(threshold))
        marks_ptrs = (None, None) if marks is None else tuple(_row_marks(m, t) for m, t in zip(marks, (in_table, out_table)))
        ids, sentence, window = (np.ascontiguousarray(a, dtype=np.int64) for a in (ids, sentence, window))
        centre_lo, centre_hi = centres if centres is not None else (0, len(ids))
        loss, examples = _f64(), _i64()
        status = self.lib.w2v_train_chunk(int(cbow), in_table.data_ptr(), out_table.data_ptr(), in_table.shape[1],
                                          ids.ctypes.data, sentence.ctypes.data, window.ctypes.data, len(ids),
                                          centre_lo, centre_hi, negative, threshold.ctypes.data, alias.ctypes.data, len(threshold),
                                          lr_from, lr_to, seed & (2**64 - 1), threads, *marks_ptrs, *tree_args,
                                          ctypes.byref(loss), ctypes.byref(examples))
        if status == -3:
            raise ValueError(f"centre range {centres} outside a chunk of {len(ids)} tokens")
        if status == -4:
            raise ValueError(f"a token id in this chunk is outside the vocabulary of {len(threshold)} words "
                             f"(a damaged token-id cache?); nothing was trained")
        if status == -2:
            raise ValueError(f"the C kernel takes at most {MAX_NEGATIVE} negatives, got {negative}")
        if status:
            raise MemoryError("the C kernel could not allocate its per-thread buffers")
        return loss.value, examples.value

    def changed_rows(self, table: torch.Tensor, base: torch.Tensor, marks: torch.Tensor | None = None) -> torch.Tensor:
        """Sorted int64 ids of the rows where table != base in any element: all rows, or only those marked
        (then the marks are cleared). table and base: contiguous float32 CPU tensors of the same shape."""
        import torch

        if table.shape != base.shape or not (table.is_contiguous() and base.is_contiguous()) \
                or table.dtype != torch.float32 or base.dtype != torch.float32:
            raise ValueError(f"changed_rows takes two contiguous float32 tables of one shape, got {table.shape} "
                             f"{table.dtype} and {base.shape} {base.dtype}")
        rows = torch.empty(table.shape[0], dtype=torch.int64)
        n = self.lib.w2v_changed_rows(table.data_ptr(), base.data_ptr(), table.shape[0], table.shape[1],
                                      None if marks is None else _row_marks(marks, table), rows.data_ptr())
        return rows[:n]

    def train_examples(self, cbow: bool, in_table: torch.Tensor, out_table: torch.Tensor, centres: torch.Tensor,
                       contexts: torch.Tensor, mask: torch.Tensor | None, negatives: torch.Tensor,
                       lr: float, tree=None) -> float:
        """Apply given examples one after another (word2vec's order); returns the summed loss.
        tree: a w2v.huffman.HuffmanTree for hierarchical softmax (negatives unused), or None."""
        import torch  # here, not at the top: the text pass loads this module and does not need torch

        centres, contexts, negatives = (t.to(torch.int64).contiguous() for t in (centres, contexts, negatives))
        vocab = min(in_table.shape[0], out_table.shape[0])
        for name, ids in (("centre", centres), ("context", contexts), ("negative", negatives)):
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
                raise ValueError(f"a {name} id is outside the vocabulary of {vocab} words; nothing was trained")
        width = contexts.shape[1] if cbow else 1
        mask_u8 = (mask if mask is not None else torch.ones_like(contexts, dtype=torch.bool)).to(torch.uint8)
        mask_u8 = mask_u8.contiguous()
        return self.lib.w2v_train_examples(int(cbow), in_table.data_ptr(), out_table.data_ptr(), in_table.shape[1],
                                           centres.data_ptr(), contexts.data_ptr(), mask_u8.data_ptr(), width,
                                           negatives.data_ptr(), len(centres), negatives.shape[1], lr,
                                           *_tree_args(tree, in_table.shape[0]))


def _tree_args(tree, vocab: int) -> tuple:
    """(codes, points, lengths, width) as the kernel takes them: addresses into the tree's own contiguous arrays
    (the tree outlives the call), or NULLs for negative sampling."""
    if tree is None:
        return None, None, None, 0
    if tree.codes.shape[0] != vocab:
        raise ValueError(f"a Huffman tree over {tree.codes.shape[0]} words for a vocabulary of {vocab}")
    arrays = (tree.codes, tree.points, tree.lengths)
    if not all(a.flags.c_contiguous for a in arrays) or (tree.codes.dtype, tree.points.dtype, tree.lengths.dtype) \
            != (np.uint8, np.int32, np.int32):
        raise ValueError("the Huffman tree's arrays must be contiguous uint8 codes, int32 points and int32 lengths")
    return tree.codes.ctypes.data, tree.points.ctypes.data, tree.lengths.ctypes.data, tree.codes.shape[1]


def _row_marks(marks, table) -> int:
    """The address of a table's row marks: one contiguous uint8 per row (the kernel writes through it)."""
    import torch

    if marks.dtype != torch.uint8 or not marks.is_contiguous() or marks.device.type != "cpu" \
            or marks.shape != (table.shape[0],):
        raise ValueError(f"row marks must be a contiguous uint8 CPU tensor of {table.shape[0]} bytes, got "
                         f"{marks.dtype} {tuple(marks.shape)} on {marks.device}")
    return marks.data_ptr()


def load_sgns() -> SgnsKernel | None:
    """The compiled skip-gram/CBOW kernel, or None (then use the torch path)."""
    return _load_kernel(SOURCE, SgnsKernel, "backend=fused uses its (slower) torch path")


def load_words():
    """The compiled splitter of w2v/kernels/words.py (a WordsKernel), or None (then w2v/words.py's Python path)."""
    from .words import WordsKernel

    return _load_kernel(WORDS_SOURCE, WordsKernel, "the corpus is split by the (slower) Python path")


def load_phrases():
    """The compiled pair counter of w2v/kernels/phrases.py (a PairsKernel), or None (then w2v/phrases.py's numpy path)."""
    from .phrases import PairsKernel

    return _load_kernel(PHRASES_SOURCE, PairsKernel, "phrases are found by the (slower) numpy path")


def _load_kernel(source: Path, wrap, fallback: str):
    """The library built from source, wrapped, or None.

    A library that fails to load (corrupt, or on a noexec mount) is rebuilt once; when there is
    still no kernel, one warning gives the real cause and says what runs instead (fallback).
    """
    if os.environ.get("W2V_NO_C", "") not in ("", "0"):
        return None
    with _lock:
        if source.stem not in _loaded:
            kernel, causes, noexec = None, [], False
            for attempt in range(2):  # the second: one rebuild (outside the cache if it cannot map code)
                path = library_path(rebuild=attempt > 0, errors=causes, private=noexec, source=source)
                if path is None:
                    break
                try:
                    kernel = _load(path, wrap)
                    break
                except OSError as exc:
                    causes.append(f"cannot load {path}: {exc}")
                    noexec = "failed to map segment" in str(exc) or "not permitted" in str(exc)
                    log.debug(causes[-1])
            hint = " (a noexec mount? set W2V_KERNEL_CACHE to a folder that allows executables)"
            if kernel is None:
                cause = causes[-1] if causes else f"{source.name} could not be built"
                log.warning(f"no C kernel: {cause}{hint if noexec else ''}; {fallback}")
            elif noexec:
                log.warning(f"{causes[0]}{hint}; built {source.name} in a temp folder for this run instead")
            _loaded[source.stem] = kernel
        return _loaded[source.stem]
