"""Keeping `serve` small: an editor keeps one daemon per window for hours (issue 15, part 3).

Measured as the RSS of the process after `initialize` (docs/performance.md), two
libraries load more than the daemon ever uses, and attrs keeps a copy of every
method it generates:

- httpcore imports trio whenever it is installed, to support trio's event loop
  (7 MiB with the modules it pulls in); the daemon runs on asyncio only.
- httpx imports its command-line client (click, pygments, rich: 2.3 MiB) whenever
  those happen to be installed.
- attrs stores the source of each method it writes into `linecache`, for debuggers
  to show; lsprotocol's thousand message classes leave 1.7 MiB of it behind.

Both imports are written to expect an ImportError (the libraries work without
them), which is what a `None` in `sys.modules` gives.
"""

from __future__ import annotations

import contextlib
import linecache
import sys
from collections.abc import Iterator

_NEVER_USED = ("trio", "httpx._main")


def skip_unused_imports() -> None:
    """Make the imports above fail fast (call before httpx is imported)."""
    for name in _NEVER_USED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


@contextlib.contextmanager
def without_generated_source() -> Iterator[None]:
    """Import attrs-heavy modules without keeping the generated methods' source:
    `linecache.cache` is swapped for a dictionary thrown away afterwards (the source
    of a frame in a traceback is then not shown; the file and line still are)."""
    kept = linecache.cache
    linecache.cache = {}
    try:
        yield
    finally:
        linecache.cache = kept
