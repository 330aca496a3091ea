"""deployment/deploy.sh: stops early with a clear message, and otherwise deploys in order.

The script runs for real with bash, against a stand-in `az` that records its calls (nothing
reaches Azure) and a stand-in Python, in a throwaway copy of the repository, with a PATH holding
only the tools the script may use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deployment.templates import DEPLOYMENT

pytestmark = pytest.mark.unit

BASH = shutil.which("bash") or "/bin/bash"
TOOLS = ("cat", "date", "dirname", "mktemp", "rm", "sleep", "zip")
OUTPUTS = {
    "botAppId": "22222222-2222-2222-2222-222222222222",
    "webAppName": "app-memorybot-abc123",
    "webAppHostName": "app-memorybot-abc123.azurewebsites.net",
    "openAiAccountName": "oai-memorybot-abc123",
    "openAiLocation": "swedencentral",
}
FAKE_AZ = """#!{python}
import json, os, shutil, sys

args = sys.argv[1:]
state = os.environ["FAKE_AZ_STATE"]
with open(os.path.join(state, "az.jsonl"), "a") as log:
    log.write(json.dumps(args) + "\\n")
failing = os.environ.get("FAKE_AZ_FAIL", "")
command = " ".join(a for a in args[:3] if not a.startswith("-"))


def option(name):
    return args[args.index(name) + 1]


if command.startswith("account show"):
    if failing == "signed-out":
        sys.exit("Please run 'az login' to setup account.")
    if "--query" in args:
        print("Contoso\\n11111111-1111-1111-1111-111111111111")
elif command.startswith("bicep version"):
    if failing == "bicep":
        sys.exit("Bicep CLI not found.")
    print("Bicep CLI version 0.30.23")
elif command.startswith("group show"):
    sys.exit(3)  # ResourceGroupNotFound
elif command.startswith(("group create", "deployment group create")):
    pass
elif command.startswith("deployment group show"):
    print(json.loads(os.environ["FAKE_AZ_OUTPUTS"])[option("--query").split(".")[2]])
elif command.startswith("webapp deploy"):
    shutil.copy(option("--src-path"), os.path.join(state, "app.zip"))
else:
    sys.exit("fake az: unexpected " + " ".join(args))
"""
SHIPPED = (
    "app.py",
    "config.py",
    "requirements.txt",
    "bots/__init__.py",
    "memory/__init__.py",
    "scripts/build_app_package.py",
    "appManifest/manifest.json",
)
LEFT_BEHIND = (
    ".env",
    ".venv/bin/python",
    ".venv-checkov/bin/checkov",
    ".git/HEAD",
    "node_modules/pkg/index.js",
    "tests/test_bot.py",
    "data/memory.db",
    "bots/__pycache__/memory_bot.cpython-311.pyc",
    ".mypy_cache/3.11/cache.json",
    "package.json",
    "appPackage.zip",
    ".hypothesis/examples/x",
    # The Agents Toolkit's files: env/*.user and .localConfigs hold secrets (docs/toolkit.md).
    "env/.env.dev",
    "env/.env.dev.user",
    ".localConfigs",
    ".localConfigs.playground",
    ".vscode/launch.json",
    "devTools/playground/cli.js",
    "appPackage/build/appPackage.dev.zip",
    ".deployment/deployment.zip",
    "m365agents.yml",
    "m365agents.local.yml",
    ".webappignore",
)


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    az_calls: list[list[str]]
    python_calls: list[str]
    state: Path

    def commands(self) -> list[str]:
        return [" ".join(a for a in call[:3] if not a.startswith("-")) for call in self.az_calls]


def write(path: Path, text: str = "", executable: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if executable:
        path.chmod(0o755)
    return path


def tool_dir(where: Path, leave_out: Iterable[str] = ()) -> Path:
    """A PATH directory with the stand-in az and curl, and the real tools the script needs."""
    where.mkdir()
    write(where / "az", FAKE_AZ.format(python=sys.executable), executable=True)
    write(where / "curl", f"#!{BASH}\nexit 0\n", executable=True)
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (where / tool).symlink_to(found)
    for tool in leave_out:
        (where / tool).unlink()
    return where


def make_repository(root: Path) -> Path:
    shutil.copy(DEPLOYMENT / "deploy.sh", write(root / "deployment" / "deploy.sh"))
    write(root / "deployment" / "main.bicep", "// stand-in\n")
    write(root / "deployment" / "main.parameters.json", "{}\n")
    for name in (*SHIPPED, *LEFT_BEHIND):
        write(root / name, "x\n")
    return root


def deploy(
    tmp_path: Path,
    *args: str,
    leave_out: Iterable[str] = (),
    fail: str = "",
    python: str | None = None,
) -> Run:
    state = tmp_path / "state"
    state.mkdir()
    repository = make_repository(tmp_path / "repo")
    fake_python = write(
        tmp_path / "python",
        f'#!{BASH}\nprintf "%s\\n" "$*" >> "{state}/python.log"\nexit 0\n',
        executable=True,
    )
    environment = {
        "PATH": str(tool_dir(tmp_path / "bin", leave_out)),
        "HOME": str(tmp_path),
        "PYTHON": python or str(fake_python),
        "FAKE_AZ_STATE": str(state),
        "FAKE_AZ_OUTPUTS": json.dumps(OUTPUTS),
        "FAKE_AZ_FAIL": fail,
    }
    completed = subprocess.run(  # noqa: S603 - the script under test, fixed arguments
        [BASH, str(repository / "deployment" / "deploy.sh"), *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    az_log = state / "az.jsonl"
    python_log = state / "python.log"
    return Run(
        returncode=completed.returncode,
        stdout=completed.stdout,
        stderr=completed.stderr,
        az_calls=[json.loads(line) for line in az_log.read_text().splitlines()]
        if az_log.exists()
        else [],
        python_calls=python_log.read_text().splitlines() if python_log.exists() else [],
        state=state,
    )


needs_zip = pytest.mark.skipif(shutil.which("zip") is None, reason="zip is not installed here")
CHANGES_AZURE = ("group create", "deployment group create", "webapp deploy")


def test_without_arguments_it_prints_usage(tmp_path: Path) -> None:
    run = deploy(tmp_path)
    assert run.returncode == 2
    usage = "Usage: bash deployment/deploy.sh <resource-group> <name-prefix> [location]"
    assert usage in run.stderr
    assert run.az_calls == []


def test_a_prefix_azure_cannot_use_is_refused(tmp_path: Path) -> None:
    run = deploy(tmp_path, "rg-bot", "MemoryBot_1")
    assert run.returncode == 1
    assert "name prefix 'MemoryBot_1' must be 3-16 lowercase letters" in run.stderr
    assert run.az_calls == []


@needs_zip
@pytest.mark.parametrize(
    ("leave_out", "fail", "python", "message"),
    [
        (("az",), "", None, "the Azure CLI (az) is not installed"),
        ((), "signed-out", None, "the Azure CLI is not signed in: run 'az login'"),
        ((), "bicep", None, "Bicep is not available to the Azure CLI: run 'az bicep install'"),
        (("zip",), "", None, "zip is not installed"),
        ((), "", "/nonexistent/python3", "Python ('/nonexistent/python3') is not installed"),
    ],
    ids=["no-az", "signed-out", "no-bicep", "no-zip", "no-python"],
)
def test_a_missing_prerequisite_stops_it_before_anything_changes(
    tmp_path: Path, leave_out: tuple[str, ...], fail: str, python: str | None, message: str
) -> None:
    run = deploy(
        tmp_path,
        "rg-bot",
        "memorybot",
        "swedencentral",
        leave_out=leave_out,
        fail=fail,
        python=python,
    )
    assert run.returncode == 1
    assert f"deploy.sh: {message}" in run.stderr
    assert not [c for c in run.commands() if c.startswith(CHANGES_AZURE)]


@needs_zip
def test_a_new_resource_group_needs_a_location(tmp_path: Path) -> None:
    run = deploy(tmp_path, "rg-bot", "memorybot")
    assert run.returncode == 1
    assert "resource group 'rg-bot' does not exist: give a location" in run.stderr
    assert not [c for c in run.commands() if c.startswith(CHANGES_AZURE)]


@needs_zip
def test_deploys_infrastructure_then_code_then_builds_the_teams_package(tmp_path: Path) -> None:
    run = deploy(tmp_path, "rg-bot", "memorybot", "swedencentral")
    assert run.returncode == 0, run.stderr

    changes = [c for c in run.commands() if c.startswith(CHANGES_AZURE)]
    assert changes == ["group create", "deployment group create", "webapp deploy"]
    calls = {" ".join(a for a in call[:3] if not a.startswith("-")): call for call in run.az_calls}
    create = calls["deployment group create"]
    assert create[create.index("--template-file") + 1] == "deployment/main.bicep"
    assert "@deployment/main.parameters.json" in create
    assert {"namePrefix=memorybot", "location=swedencentral"} <= set(create)
    assert "swedencentral" in calls["group create"]
    web_deploy = calls["webapp deploy"]
    assert web_deploy[web_deploy.index("--name") + 1] == OUTPUTS["webAppName"]
    assert web_deploy[web_deploy.index("--type") + 1] == "zip"

    with zipfile.ZipFile(run.state / "app.zip") as package:
        names = set(package.namelist())
    assert set(SHIPPED) <= names
    assert not {n for n in names if n.startswith(LEFT_BEHIND)}, sorted(names)

    build = f"scripts/build_app_package.py --bot-id {OUTPUTS['botAppId']} --output appPackage.zip"
    assert run.python_calls[-1] == build
    assert f"https://{OUTPUTS['webAppHostName']}/api/messages" in run.stdout
    assert "appPackage.zip" in run.stdout
    assert "az group delete --name rg-bot" in run.stdout
    assert "az cognitiveservices account purge" in run.stdout


def test_the_script_is_strict_bash() -> None:
    script = (DEPLOYMENT / "deploy.sh").read_text(encoding="utf-8")
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in script
    assert os.access(DEPLOYMENT / "deploy.sh", os.X_OK)
    checked = subprocess.run(  # noqa: S603 - bash -n only parses
        [BASH, "-n", str(DEPLOYMENT / "deploy.sh")], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
