"""One way the campaign starts a process of its own: ``python -m chaos.<module> CONFIG``
from the folder that holds this ``chaos`` (a checkout, or the installed project's
site-packages), its configuration in a JSON file and its output in a log beside it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def spawned(
    module: str, folder: Path, name: str, config: dict[str, Any]
) -> subprocess.Popen[bytes]:
    """``python -m chaos.<module> <folder>/<name>.json``, writing to ``<folder>/<name>.log``."""
    config_file = folder / f"{name}.json"
    config_file.write_text(json.dumps(config))
    with (folder / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", f"chaos.{module}", str(config_file)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
