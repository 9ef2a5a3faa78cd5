"""Atomic file writes: write to a temp file beside the target, then rename.

A crash, a kill or a full disk therefore never leaves a truncated file under
the final name; readers see either the old file or the complete new one. A write
that fails (a full disk, a read-only folder) ends in one line naming the file.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import W2VError

# mkstemp creates files readable by their owner only; a published file gets the usual
# permissions instead (0666 less the umask), like one made by open(). Read once: reading
# the umask means setting it.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in the target's folder; on success it is renamed over the target.

    An OSError on the way (in the caller's writes too) leaves the target as it was and
    becomes a W2VError: "cannot write TARGET: No space left on device".
    """
    target = Path(target)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb+") as f:  # make the bytes durable before the rename publishes them
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise W2VError(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise


def write_json(target: str | os.PathLike, obj: Any) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_report(out_dir: str | os.PathLike, stem: str, markdown: str, rows: list[dict]) -> None:
    """A benchmark's table as out_dir/stem.md and its rows as out_dir/stem.csv, each written atomically."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / f"{stem}.md") as tmp:
        tmp.write_text(markdown.rstrip("\n") + "\n", encoding="utf-8")
    with atomic_path(out_dir / f"{stem}.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
