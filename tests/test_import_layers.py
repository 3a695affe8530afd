"""Dependencies run one way: the layers contract of ``setup.cfg`` (import-linter) holds, so
the cache knows no domain and no package imports one above it."""

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_no_package_imports_one_above_it(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "setup.cfg"), no_cache=True) == 0
