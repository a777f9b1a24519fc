"""Keeping `serve` small: an editor keeps one daemon per window for hours (issue 15, part 3).

Measured as the RSS of the process after `initialize` (docs/performance.md), two
libraries load more than the daemon ever uses, and attrs keeps copies for every
class it builds that nothing reads:

- httpcore imports trio whenever it is installed, to support trio's event loop
  (7 MiB with the modules it pulls in); the daemon runs on asyncio only.
- httpx imports its command-line client (click, pygments, rich: 2.3 MiB) whenever
  those happen to be installed.
- attrs stores the source of each method it writes into `linecache`, for debuggers
  to show; lsprotocol's thousand message classes leave 1.7 MiB of it behind.
- attrs gives each class's generated `__init__` a copy of its module's namespace
  as globals (so that `typing.get_type_hints(cls.__init__)` resolves string
  annotations), but only when the module is already in `sys.modules`. A copy of
  `lsprotocol.types`' growing namespace for each of its thousand classes is
  5 MiB; `import_unregistered` runs that module before registering it, so the
  copies are never made. Nothing needs them: lsprotocol's annotations are
  objects, not strings, and cattrs reads a class's hints from the class.

The two imports skipped are written to expect an ImportError (the libraries work without
them), which is what a `None` in `sys.modules` gives.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import linecache
import sys
from collections.abc import Iterator

_NEVER_USED = ("trio", "httpx._main")
ATTRS_HEAVY = "lsprotocol.types"  # the thousand classes pygls speaks in


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


def import_unregistered(name: str) -> None:
    """Import the module `name` the ordinary way, except that it enters `sys.modules`
    (and its package) only once it has run, for the reason in this module's doc.
    Only for a module that never imports itself while it runs (lsprotocol.types
    does not)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    package, _, child = name.rpartition(".")
    if package:
        setattr(importlib.import_module(package), child, module)
