"""Builds appPackage.zip, the MemoryBot app package to upload to Microsoft Teams.

    python scripts/build_app_package.py --bot-id <GUID> [--output appPackage.zip]

The package holds appManifest/manifest.json with its ${{NAME}} placeholders filled in from the
options below, plus appManifest/color.png and appManifest/outline.png, all at the zip's root.
--bot-id defaults to MicrosoftAppId from the environment or .env (the environment wins), the same
identity the bot runs with. For a bot-only app, the Teams app id is the bot id. See
appManifest/README.md for uploading the package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dotenv import dotenv_values

MANIFEST_DIR = Path(__file__).resolve().parent.parent / "appManifest"
ICONS = ("color.png", "outline.png")
PLACEHOLDER = re.compile(r"\$\{\{([A-Z0-9_]+)\}\}")
GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
SEMVER = re.compile(r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)")
DOMAIN = re.compile(
    r"(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+(?::\d+)?"
)
# Placeholders that stand for a list: an array item that is exactly this placeholder becomes
# zero or more items.
LIST_PLACEHOLDERS = frozenset({"VALID_DOMAINS"})

# Defaults an operator must replace before rolling the app out; the build warns while they stay.
PLACEHOLDER_SITE = "https://example.com/memorybot"
DEFAULTS = {
    "name": "MemoryBot",
    "version": "1.0.0",
    "developer_name": "MemoryBot",
    "website_url": PLACEHOLDER_SITE,
    "privacy_url": f"{PLACEHOLDER_SITE}/privacy",
    "terms_url": f"{PLACEHOLDER_SITE}/terms",
}
NAME_MAX, DEVELOPER_NAME_MAX = 30, 32  # the manifest schema's limits


class BuildError(Exception):
    """The package cannot be built from appManifest/ as it is; the message says what to fix."""


@dataclass(frozen=True)
class PackageValues:
    """The per-deployment values that fill manifest.json's placeholders, already checked."""

    bot_id: str
    version: str
    name: str
    developer_name: str
    website_url: str
    privacy_url: str
    terms_url: str
    valid_domains: tuple[str, ...]

    def placeholders(self) -> dict[str, str | list[str]]:
        return {
            "BOT_ID": self.bot_id,
            "APP_VERSION": self.version,
            "APP_NAME": self.name,
            "DEVELOPER_NAME": self.developer_name,
            "WEBSITE_URL": self.website_url,
            "PRIVACY_URL": self.privacy_url,
            "TERMS_URL": self.terms_url,
            "VALID_DOMAINS": list(self.valid_domains),
        }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python scripts/build_app_package.py",
        description="Build the Teams app package (manifest.json, color.png, outline.png).",
    )
    add = parser.add_argument
    add("--bot-id", help="the bot's Microsoft App ID, a GUID (default: MicrosoftAppId)")
    add("--output", type=Path, default=Path("appPackage.zip"), help="default: appPackage.zip")
    add(
        "--version",
        default=DEFAULTS["version"],
        help="app version, MAJOR.MINOR.PATCH; raise it for every upload that replaces an earlier "
        "package (default: %(default)s)",
    )
    add("--name", default=DEFAULTS["name"], help="short name in Teams (default: %(default)s)")
    add("--developer-name", default=DEFAULTS["developer_name"], help="who runs the bot")
    add("--website-url", default=DEFAULTS["website_url"], help="https URL: about or support")
    add("--privacy-url", default=DEFAULTS["privacy_url"], help="https URL: privacy statement")
    add("--terms-url", default=DEFAULTS["terms_url"], help="https URL: terms of use")
    add(
        "--valid-domain",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="a domain the app may open, such as memorybot.example.com; repeatable; "
        "a bot-only app needs none",
    )
    return parser


def resolve_bot_id(given: str | None, environ: Mapping[str, str], dotenv_path: Path) -> str:
    """--bot-id, else MicrosoftAppId from the environment, else from .env; may be empty."""
    if given is not None:
        return given.strip()
    from_env = environ.get("MicrosoftAppId", "").strip()
    if from_env or not dotenv_path.is_file():
        return from_env
    return (dotenv_values(dotenv_path).get("MicrosoftAppId") or "").strip()


def check_values(args: argparse.Namespace, bot_id: str) -> tuple[PackageValues, list[str]]:
    """The values for the manifest and every problem found with them (empty when all is well)."""
    problems: list[str] = []
    if not bot_id:
        problems.append(
            "no bot id: pass --bot-id <GUID>, or set MicrosoftAppId in the environment or .env "
            "(the Microsoft App ID of the bot's Azure Bot resource)"
        )
    elif not GUID.fullmatch(bot_id):
        problems.append(
            f"bot id {bot_id!r} is not a GUID such as 00000000-0000-0000-0000-000000000000 "
            "(use the Microsoft App ID of the bot's Azure Bot resource)"
        )
    version = args.version.strip()
    if not SEMVER.fullmatch(version):
        problems.append(f"--version {version!r} is not MAJOR.MINOR.PATCH, such as 1.0.0")
    name = args.name.strip()
    if not 0 < len(name) <= NAME_MAX:
        problems.append(f"--name must be 1 to {NAME_MAX} characters, got {len(name)}")
    developer_name = args.developer_name.strip()
    if not 0 < len(developer_name) <= DEVELOPER_NAME_MAX:
        problems.append(
            f"--developer-name must be 1 to {DEVELOPER_NAME_MAX} characters, "
            f"got {len(developer_name)}"
        )
    urls = {}
    for option in ("website_url", "privacy_url", "terms_url"):
        url = str(getattr(args, option)).strip()
        parts = urlparse(url)
        if parts.scheme != "https" or not parts.netloc:
            flag = "--" + option.replace("_", "-")
            problems.append(f"{flag} {url!r} is not an https URL such as https://contoso.com/")
        urls[option] = url
    domains = tuple(domain.strip() for domain in args.valid_domain)
    for domain in domains:
        if not DOMAIN.fullmatch(domain):
            problems.append(
                f"--valid-domain {domain!r} is not a domain such as memorybot.contoso.com "
                "or *.contoso.com (no https://, no path)"
            )
    values = PackageValues(
        bot_id=bot_id,
        version=version,
        name=name,
        developer_name=developer_name,
        valid_domains=domains,
        **urls,
    )
    return values, problems


def render_manifest(template: Any, values: Mapping[str, str | list[str]]) -> Any:
    """A copy of the parsed template with every ${{NAME}} replaced; unknown names are an error."""

    def text(value: str) -> str:
        def replace(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values or key in LIST_PLACEHOLDERS:
                raise BuildError(
                    f"appManifest/manifest.json uses ${{{{{key}}}}}, which the build does not "
                    f"fill in here; known: {', '.join(sorted(values))}"
                )
            replacement = values[key]
            assert isinstance(replacement, str)
            return replacement

        return PLACEHOLDER.sub(replace, value)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return text(node)
        if isinstance(node, dict):
            return {text(key): walk(item) for key, item in node.items()}
        if isinstance(node, list):
            out: list[Any] = []
            for item in node:
                whole = PLACEHOLDER.fullmatch(item) if isinstance(item, str) else None
                if whole and whole.group(1) in LIST_PLACEHOLDERS:
                    out.extend(values[whole.group(1)])
                else:
                    out.append(walk(item))
            return out
        return node

    return walk(template)


def build_package(values: PackageValues, output: Path, source: Path = MANIFEST_DIR) -> Path:
    """Writes the zip (manifest.json and the icons at its root) and returns its path."""
    template_path = source / "manifest.json"
    try:
        template = json.loads(template_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BuildError(f"{template_path} is missing") from None
    except json.JSONDecodeError as error:
        raise BuildError(f"{template_path} is not valid JSON: {error}") from None
    manifest = render_manifest(template, values.placeholders())
    files = {"manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()}
    for icon in ICONS:
        try:
            files[icon] = (source / icon).read_bytes()
        except FileNotFoundError:
            raise BuildError(
                f"{source / icon} is missing; run python appManifest/make_icons.py"
            ) from None

    output.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target, then rename, so a failed build never leaves half a zip behind.
    handle, temporary = tempfile.mkstemp(prefix=output.name, suffix=".tmp", dir=output.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as package:
            for name, data in files.items():
                # A fixed timestamp: the same inputs give the same bytes.
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                package.writestr(info, data)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    bot_id = resolve_bot_id(args.bot_id, os.environ, Path(".env"))
    values, problems = check_values(args, bot_id)
    if problems:
        parser.error("cannot build the app package:\n  - " + "\n  - ".join(problems))
    try:
        output = build_package(values, args.output)
    except (BuildError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for label, value in (
        ("--website-url", values.website_url),
        ("--privacy-url", values.privacy_url),
        ("--terms-url", values.terms_url),
    ):
        if value.startswith(PLACEHOLDER_SITE):
            print(
                f"warning: {label} is the placeholder {value}; "
                "set your organisation's page before rolling the app out",
                file=sys.stderr,
            )
    print(
        f"Wrote {output} for bot {values.bot_id}, version {values.version}. "
        "Upload it in Teams: Apps > Manage your apps > Upload an app (appManifest/README.md)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
