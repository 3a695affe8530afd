"""``python -m chaos`` from an installed project: a plain (non-editable) install of the
package, run outside the checkout with nothing of the checkout on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# what is not part of the build: the checkout's own environments, caches and test suite
NOT_BUILT = (".*", "build", "*.egg-info", "__pycache__", "tests", "docs", "bench", "examples")


def test_the_campaign_starts_from_a_plain_install_outside_the_checkout(tmp_path):
    source, site = tmp_path / "source", tmp_path / "site"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_BUILT))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, source],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # -S: no site-packages set-up, so the editable install of the checkout is not on the
    # path; the dependencies are read from this interpreter's site-packages as plain folders
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    finished = subprocess.run(
        [sys.executable, "-S", "-m", "chaos", "--help"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *dependencies])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.startswith("usage: python -m chaos")
