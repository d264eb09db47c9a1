"""A tiny progress bar on stderr (no dependency), used by the analysis job and the CLI.

On a terminal it redraws one line in place (at most ten times a second); elsewhere (CI logs, pipes)
it prints one line when a task finishes, so logs stay short. Disabled bars cost nothing.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "end_line"]

#: the stream on which a bar has drawn a line that no newline has ended yet (or None)
_open_stream: TextIO | None = None


def end_line() -> None:
    """End the line of a bar that was redrawn in place and not closed (an error or an interrupt
    stopped its task), so that the next message starts on a line of its own."""
    global _open_stream
    if _open_stream is not None:
        try:
            _open_stream.write("\n")
            _open_stream.flush()
        except (OSError, ValueError):  # closed stream
            pass
        _open_stream = None


class Progress:
    """``Progress("SHAP", total=n)`` then ``update(k)`` per batch and ``close()`` (or use ``with``).

    Parameters
    ----------
    desc : str
        What is being done (``"reading"``, ``"model calls"``, ``"SHAP"``...).
    total : int, optional
        Expected number of units; without it the bar shows a running count.
    unit : str
        Unit name shown after the count.
    enabled : bool
        False makes every method a no-op.
    stream : file, optional
        Where to write (default ``sys.stderr``).
    """

    def __init__(
        self,
        desc: str,
        total: int | None = None,
        *,
        unit: str = "rows",
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.desc, self.total, self.unit, self.enabled = desc, total, unit, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._closed = False
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self) -> str:
        el = time.perf_counter() - self._t0
        if self.total:
            frac = min(self.n / self.total, 1.0)
            filled = int(frac * 24)
            bar = "█" * filled + "·" * (24 - filled)
            return f"{self.desc:>12} |{bar}| {self.n:,}/{self.total:,} {self.unit} [{el:5.1f}s]"
        return f"{self.desc:>12} {self.n:,} {self.unit} [{el:5.1f}s]"

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` units."""
        global _open_stream
        if not self.enabled or self._closed:
            return
        self.n += n
        now = time.perf_counter()
        if self._tty and now - self._last >= 0.1:
            self._last = now
            self.stream.write("\r" + self._line())
            self.stream.flush()
            _open_stream = self.stream

    def set(self, n: int) -> None:
        """Set the count to ``n`` (for callers that know the total done so far)."""
        if self.enabled and n > self.n:
            self.update(n - self.n)

    def close(self) -> None:
        """Finish the bar (prints the final line)."""
        if not self.enabled or self._closed:
            return
        global _open_stream
        self._closed = True
        self.stream.write(("\r" if self._tty else "") + self._line() + "\n")
        self.stream.flush()
        if _open_stream is self.stream:
            _open_stream = None
