"""Where the tests find the real parts that scripts/setup/ installs (`.real-parts/`).

A missing part skips its tests on a developer's machine, with the command that installs
it; under CI (`CI=true`) a missing part fails instead, so a broken install step can never
pass as a green run that tested nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ROOT / ".real-parts"


def real_part(relative: str, setup_script: str) -> Path:
    """The path of an installed part, e.g. `real_part("code-server/bin/code-server", "20-code-server.sh")`."""
    path = PARTS / relative
    if path.exists():
        return path
    message = f"{path} is missing: run scripts/setup/{setup_script}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
