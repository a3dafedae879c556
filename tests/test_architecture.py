"""The import contracts in pyproject.toml hold for every installed package.

``scripts/lint_imports.py`` runs import-linter on those contracts, left to the
packages present in this checkout. The packages must be installed (``make
install`` does it in editable mode) for import-linter to find them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = ROOT / "scripts" / "lint_imports.py"


def run_lint_imports(
    *args: str, cwd: Path = ROOT, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, str(LINT_IMPORTS), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_contracts_hold() -> None:
    result = run_lint_imports()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "0 broken" in output


def write_package(root: Path, name: str, body: str = "") -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(body)


def test_broken_contract_fails_check(tmp_path: Path) -> None:
    write_package(tmp_path, "alpha", "import beta\n")
    write_package(tmp_path, "beta")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_packages = ["alpha", "beta", "planned"]

            [[tool.importlinter.contracts]]
            name = "Alpha and beta are independent"
            type = "independence"
            modules = ["alpha", "beta", "planned"]
            """
        )
    )
    result = run_lint_imports(
        "--pyproject", str(pyproject), cwd=tmp_path, pythonpath=tmp_path
    )
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert "left out: planned" in result.stdout
