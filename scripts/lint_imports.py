"""Check the import-linter contracts of pyproject.toml for the packages that exist.

pyproject.toml names every planned service, but import-linter stops with an
error on a root package it cannot import. This script drops the root packages
that are not in the checkout yet, removes them from each contract (and drops a
contract left with nothing to check), writes the result as an INI file and runs
``lint-imports`` on it. Its exit status is lint-imports' status: 0 when every
contract holds. A package whose code exists but is not installed is an error,
so a missing editable install cannot hide a broken contract.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE_FIELDS = ("modules", "source_modules", "forbidden_modules", "containers")
# A contract with fewer entries than this in a field has nothing left to check.
MINIMUM_ENTRIES = {
    "modules": 2,
    "layers": 2,
    "source_modules": 1,
    "forbidden_modules": 1,
    "containers": 1,
}
NAME_PATTERN = re.compile(r"[A-Za-z_][\w.*]*")


def top_package(expression: str) -> str:
    return expression.strip().split(".")[0]


def filter_contract(contract: dict, present: Callable[[str], bool]) -> dict | None:
    """Drop absent packages from ``contract``; return None if nothing is left."""
    narrowed = dict(contract)
    for name in MODULE_FIELDS:
        if name in narrowed:
            narrowed[name] = [
                item for item in narrowed[name] if present(top_package(item))
            ]
    if "layers" in narrowed and "containers" not in narrowed:
        narrowed["layers"] = [
            layer
            for layer in narrowed["layers"]
            if any(present(top_package(n)) for n in NAME_PATTERN.findall(layer))
        ]
    if "ignore_imports" in narrowed:
        narrowed["ignore_imports"] = [
            rule
            for rule in narrowed["ignore_imports"]
            if all(present(top_package(side)) for side in rule.split("->"))
        ]

    for name, count in MINIMUM_ENTRIES.items():
        if name in narrowed and len(narrowed[name]) < count:
            return None
    return narrowed


def filter_config(config: dict, is_installed: Callable[[str], bool]) -> dict:
    """Keep the installed root packages and the contracts that still apply."""
    declared = list(config["root_packages"])
    roots = [name for name in declared if is_installed(name)]

    def present(package: str) -> bool:
        return package not in declared or package in roots

    contracts = []
    for contract in config.get("contracts", []):
        narrowed = filter_contract(contract, present)
        if narrowed is not None:
            contracts.append(narrowed)
    return {**config, "root_packages": roots, "contracts": contracts}


def ini_value(value: object) -> str:
    if isinstance(value, list):
        return "".join(f"\n    {item}" for item in value)
    return str(value)


def to_ini(config: dict) -> str:
    """Render a ``[tool.importlinter]`` table in import-linter's INI format."""
    lines = ["[importlinter]"]
    for key, value in config.items():
        if key != "contracts":
            lines.append(f"{key} = {ini_value(value)}")
    for number, contract in enumerate(config["contracts"], start=1):
        lines.append(f"\n[importlinter:contract:{contract.get('id', number)}]")
        for key, value in contract.items():
            if key != "id":
                lines.append(f"{key} = {ini_value(value)}")
    return "\n".join(lines) + "\n"


def is_installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def uninstalled_code(project: Path, packages: list[str]) -> list[str]:
    """Explain each package whose source is in ``project`` but cannot be imported."""
    problems = []
    for package in packages:
        for directory in (project / package, project / "services" / package):
            if not (directory / package / "__init__.py").is_file():
                continue
            if (directory / "pyproject.toml").is_file():
                problems.append(f"{package} is not installed; run `make install`")
            else:
                problems.append(f"{package} has no {directory.name}/pyproject.toml")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)

    config = tomllib.loads(args.pyproject.read_text())["tool"]["importlinter"]
    filtered = filter_config(config, is_installed)
    absent = [
        name
        for name in config["root_packages"]
        if name not in filtered["root_packages"]
    ]
    problems = uninstalled_code(args.pyproject.parent, absent)
    for problem in problems:
        print(f"error: {problem}, so its imports cannot be checked", file=sys.stderr)
    if problems:
        return 2
    if absent:
        print(f"lint_imports: not in this checkout, left out: {', '.join(absent)}")

    with tempfile.NamedTemporaryFile(
        "w", suffix=".ini", prefix="importlinter-"
    ) as file:
        file.write(to_ini(filtered))
        file.flush()
        command = [str(Path(sys.executable).with_name("lint-imports"))]
        command += ["--no-cache", "--no-logo", file.name]
        return subprocess.run(command, check=False).returncode  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
