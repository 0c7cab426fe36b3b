"""The layer contract (pyproject.toml [tool.importlinter]) holds, and an upward import breaks it."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    return subprocess.run(LINT + ["--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, env=env, timeout=300)


def test_layer_contract_is_kept():
    proc = lint(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    # A copy of the package in which a face module imports the engine (faces sit below bench).
    shutil.copytree(REPO / "swapbench", tmp_path / "swapbench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    warp = tmp_path / "swapbench" / "faces" / "warp.py"
    warp.write_text(warp.read_text() + "\nfrom swapbench.bench import engine  # noqa: E402,F401\n")
    proc = lint(tmp_path)
    assert proc.returncode != 0
    assert "swapbench.faces.warp -> swapbench.bench.engine" in proc.stdout
