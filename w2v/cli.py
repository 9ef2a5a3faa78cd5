"""The shell every entry point runs in: w2v.train, w2v.vqa and w2v.evaluate (and their console scripts).

It owns what a user sees when something is wrong and what the process returns: a W2VError is
one line on stderr and a non-zero exit status, never a traceback. It also owns the pieces every
command needs the same way: the command line's values as Hydra will read them (so a run dir can
be refused before Hydra writes into it), the device, and the process's quick exit.
"""
from __future__ import annotations

import atexit
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from .errors import W2VError

@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a W2VError into one line on stderr ("error: ...") and its exit status (2)."""
    try:
        yield
    except W2VError as exc:
        print(f"{exc.kind}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


def command_line_values(argv: Iterable[str], keys: Iterable[str]) -> dict[str, Any]:
    """The values the command line gives these keys, typed as Hydra types them (true -> True, null -> None).

    Read with Hydra's own override grammar, so `overwrite=true` here is what `overwrite` is in the
    composed config later. An argument Hydra cannot parse is left to Hydra, which reports it.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    wanted, parser, values = set(keys), OverridesParser.create(), {}
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            override = parser.parse_override(arg)
        except Exception:  # noqa: BLE001 - Hydra's parse errors come in several types; Hydra reports them
            continue
        if override.key_or_group in wanted and not override.is_delete():
            values[override.key_or_group] = override.value()
    return values


def resolve_device(name: str, local_rank: int | None = None):
    """auto -> cuda when present, else cpu; cuda without a GPU is a user error. A rank takes cuda:local_rank."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name != "cpu" and not name.startswith("cuda"):
        raise W2VError(f"train.device must be auto, cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise W2VError("train.device=cuda but no CUDA device is available; use train.device=cpu or auto")
    if name.startswith("cuda") and local_rank is not None:
        return torch.device("cuda", local_rank)  # one GPU per rank
    return torch.device(name)


def run_hydra_app(hydra_main: Callable[[], None],
                  check_command_line: Callable[[list[str]], list[str] | None] = lambda argv: None) -> None:
    """The whole life of a Hydra command: check the command line, run the @hydra.main function, exit.

    check_command_line sees the arguments before Hydra does (Hydra writes into the run dir first
    thing), raises W2VError to refuse them in one line, and may return arguments to add. The
    process then ends with the command's exit status, skipping two fixed costs (below).
    """
    argv = sys.argv[1:]
    with user_errors():
        sys.argv.extend(check_command_line(argv) or [])
    skip_hydra_mode_probe(argv)
    try:
        hydra_main()
    except SystemExit as exc:
        exit_without_teardown(exc.code)
    exit_without_teardown(0)


def skip_hydra_mode_probe(argv: list[str]) -> None:
    """Spare Hydra its first of two compositions of the whole config (about 0.1 s of the fixed cost).

    Hydra composes the config once only to read hydra.mode (RUN or MULTIRUN), then again to run.
    w2v/conf/ never sets hydra.mode, so that probe finds None, and Hydra then runs in RUN mode (or
    MULTIRUN under --multirun). When the command line cannot set it either (no hydra.mode=..., no
    other config dir or name), the probe's answer is known: None, without composing. Should Hydra
    rename its private Hydra.get_mode, nothing is changed and it probes as before.
    """
    config_flags = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir")
    if any(arg.lstrip("+~").startswith("hydra.mode") or arg.split("=")[0] in config_flags for arg in argv):
        return
    try:
        from hydra._internal.hydra import Hydra
    except ImportError:
        return
    if callable(getattr(Hydra, "get_mode", None)):
        Hydra.get_mode = lambda self, config_name, overrides: None


def exit_without_teardown(code) -> None:
    """End the process as sys.exit(code) would, without the interpreter's teardown of every module.

    With torch imported, that teardown (freeing thousands of modules' objects, one by one) takes
    0.4-0.6 s of a run's fixed cost, and nothing of this run needs it: every output is written and
    closed by now. The exit handlers still run (they flush and close the log files, end worker
    processes), then the standard streams are flushed.
    """
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said on it
            pass
    os._exit(code)
