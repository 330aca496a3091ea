"""checkov (offline) finds nothing wrong in deployment/, and every check it skips says why.

checkov cannot share .venv with pytest (it pins packaging<24; pytest needs packaging>=24), so it
lives in its own virtual environment: `.venv-checkov/`, made by scripts/test.sh from
deployment/requirements-checkov.txt. Set CHECKOV=/path/to/checkov to use another.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deployment.templates import DEPLOYMENT, ROOT

pytestmark = pytest.mark.integration

_SKIP_COMMENT = re.compile(r"//\s*checkov:skip=(?P<check>[A-Z0-9_]+):(?P<reason>.*)")


def checkov_executable() -> str:
    candidates = [
        os.environ.get("CHECKOV", ""),
        str(ROOT / ".venv-checkov" / "bin" / "checkov"),
        shutil.which("checkov") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "checkov is not installed: run scripts/test.sh (it makes .venv-checkov from "
        "deployment/requirements-checkov.txt), or set CHECKOV=/path/to/checkov"
    )


def run_checkov() -> dict[str, Any]:
    environment = {
        **os.environ,
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",  # no network: no version check
        "BC_SKIP_MAPPING": "TRUE",
    }
    completed = subprocess.run(  # noqa: S603 - our own tool, fixed arguments
        [
            checkov_executable(),
            "--directory",
            str(DEPLOYMENT),
            "--framework",
            "bicep",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        env=environment,
        check=False,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {completed.returncode}):\n{completed.stderr}")
    reports = report if isinstance(report, list) else [report]
    (bicep,) = [r for r in reports if r.get("check_type") == "bicep"]
    assert isinstance(bicep, dict)
    return bicep


def skip_comments() -> dict[tuple[str, str], str]:
    """(file under deployment/, check id) to the reason written next to the skip."""
    found = {}
    for path in sorted(DEPLOYMENT.rglob("*.bicep")):
        for match in _SKIP_COMMENT.finditer(path.read_text(encoding="utf-8")):
            found[(path.relative_to(DEPLOYMENT).as_posix(), match["check"])] = match["reason"]
    return found


def test_checkov_finds_no_problem_and_every_skip_has_a_reason() -> None:
    report = run_checkov()
    summary, results = report["summary"], report["results"]

    assert summary["parsing_errors"] == 0, results.get("parsing_errors")
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in results["failed_checks"]]
    assert not failed, failed
    assert summary["passed"] > 0

    skipped = {(c["file_path"].lstrip("/"), c["check_id"]) for c in results["skipped_checks"]}
    written = skip_comments()
    # Each skip in the files is one checkov applied; none is left over from an old resource.
    assert skipped == set(written)
    for key, reason in written.items():
        assert len(reason.strip()) >= 20, f"{key}: say why the check does not apply"
