"""Compiled CPU kernels: C sources built with the system compiler at first use, cached per machine.

`load_sgns()` returns an `SgnsKernel` (w2v/kernels/sgns.py: ctypes over w2v/kernels/sgns.c), `load_words()` a
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

from .sgns import MAX_NEGATIVE, SgnsKernel  # noqa: F401 - sgns.c's wrapper (w2v/kernels/sgns.py); MAX_NEGATIVE is public

log = logging.getLogger("w2v")

SOURCE = Path(__file__).with_name("sgns.c")
WORDS_SOURCE = Path(__file__).with_name("words.c")
PHRASES_SOURCE = Path(__file__).with_name("phrases.c")
# Fast float maths without -ffast-math itself: linking with it would switch the whole
# process (numpy, torch) to flush-denormals-to-zero. Reassociation lets dot products vectorise.
OPT_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math", "-fno-signed-zeros",
             "-ffp-contract=fast", "-funroll-loops"]
LINK_FLAGS = ["-fPIC", "-shared", "-pthread"]
_lock = threading.Lock()
_loaded: dict[str, object] = {}



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
