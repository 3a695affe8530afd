"""Dependencies run one way: the layers contract of ``setup.cfg`` (import-linter) holds, so
the cache knows no domain and no package imports one above it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_package_imports_one_above_it():
    # in a process of its own: lint-imports reconfigures logging (it disables loggers)
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    linted = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert linted.returncode == 0, linted.stdout + linted.stderr
