"""Stop cleanly on SIGINT / SIGTERM: finish the current step, checkpoint, then exit.

The first signal only sets a flag that the training loop reads after each step,
so no step is left half-applied; a second SIGINT (an impatient Ctrl-C) aborts at once.
"""
from __future__ import annotations

import signal
import threading


class StopRequest:
    """Context manager that turns SIGINT/SIGTERM into `requested` while training runs."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.signal_number: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def request(self, signum: int) -> None:
        """Ask the loop to stop (what the handler does; tests may call it directly)."""
        self.signal_number = signum
        self.signal_name = signal.Signals(signum).name

    def _handle(self, signum, _frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: the user does not want to wait
        self.request(signum)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():  # handlers live in the main thread only
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
