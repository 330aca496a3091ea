"""Refreshes tests/deployment/toolkit_schema/ from the Agents Toolkit CLI's npm package.

    python -m tests.deployment.fetch_toolkit_schema [--package-version 1.1.17] [--schema v1.12]

The JSON schemas of the Toolkit's project files (m365agents*.yml) ship only inside
@microsoft/m365agentstoolkit-cli. Its dependencies build a native module (keytar, through
@azure/msal-node-extensions) that needs libsecret and a download from GitHub, so it cannot be a
devDependency that `npm ci` installs. This script fetches the package's tarball with `npm pack`
(nothing installed, no scripts run), copies each schema out byte for byte into
toolkit_schema/<version>/yaml.schema.json, and records the package, its version, the path inside
it and the SHA-256 in toolkit_schema/source.json, which tests/deployment/test_toolkit.py checks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@microsoft/m365agentstoolkit-cli"
HERE = Path(__file__).resolve().parent / "toolkit_schema"
SOURCE = HERE / "source.json"


def member_path(schema_version: str) -> str:
    return f"package/resource/yaml-schema/{schema_version}/yaml.schema.json"


def fetch(package_version: str, schema_versions: list[str]) -> dict[str, object]:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed")
    schemas: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as work:
        packed = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [npm, "pack", f"{PACKAGE}@{package_version}", "--pack-destination", work, "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        tarball = Path(work) / json.loads(packed.stdout)[0]["filename"]
        with tarfile.open(tarball) as archive:
            for version in schema_versions:
                extracted = archive.extractfile(member_path(version))
                if extracted is None:
                    raise SystemExit(f"{PACKAGE}@{package_version} has no {member_path(version)}")
                data = extracted.read()
                json.loads(data)  # a schema, not an error page
                target = HERE / version / "yaml.schema.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                schemas[version] = {
                    "path": member_path(version),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
    return {"package": PACKAGE, "version": package_version, "schemas": schemas}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package-version", default="1.1.17")
    parser.add_argument("--schema", action="append", default=[], help="such as v1.12; repeatable")
    args = parser.parse_args()
    versions = args.schema or ["v1.12"]
    source = fetch(args.package_version, versions)
    SOURCE.write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {', '.join(versions)} from {PACKAGE}@{args.package_version} to {HERE}")


if __name__ == "__main__":
    main()
