"""The Teams app package: `scripts/build_app_package.py` turns appManifest/ into a zip Teams takes.

The script runs as an operator runs it, in a child process. The built manifest is checked against
the official JSON schema for the version it declares, shipped by @microsoft/app-manifest (npm).
"""

from __future__ import annotations

import copy
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any, cast

import pytest
from jsonschema import FormatChecker
from jsonschema.validators import validator_for

from bots.commands import Command, command_in

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build_app_package.py"
MANIFEST_DIR = REPO / "appManifest"
SCHEMA_ROOT = REPO / "node_modules" / "@microsoft" / "app-manifest" / "build" / "json-schemas"
SCHEMA_URL = re.compile(
    r"https://developer\.microsoft\.com/json-schemas/teams/v(?P<version>1\.\d+)/"
    r"MicrosoftTeams\.schema\.json"
)
BOT_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
PACKAGE_FILES = ["color.png", "manifest.json", "outline.png"]
COMMANDS = [command.value for command in Command]  # the bot's own list, in its order
OPTIONS = [
    "--version", "2.3.4",
    "--name", "Contoso Memory",
    "--developer-name", "Contoso IT",
    "--website-url", "https://contoso.example/memorybot",
    "--privacy-url", "https://contoso.example/memorybot/privacy",
    "--terms-url", "https://contoso.example/memorybot/terms",
    "--valid-domain", "memorybot.contoso.example",
    "--valid-domain", "*.contoso.example",
]  # fmt: skip


def run_build(*args: str, cwd: Path, app_id: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name != "MicrosoftAppId"}
    if app_id is not None:
        env["MicrosoftAppId"] = app_id
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, str(BUILD_SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_package(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as package:
        return {name: package.read(name) for name in package.namelist()}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The files of a package built with every option given."""
    workdir = tmp_path_factory.mktemp("build")
    result = run_build("--bot-id", BOT_ID, *OPTIONS, "--output", "out/app.zip", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return read_package(workdir / "out" / "app.zip")


@pytest.fixture(scope="module")
def manifest(package: dict[str, bytes]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(package["manifest.json"].decode("utf-8"))
    return parsed


def declared_version(manifest: dict[str, Any]) -> str:
    match = SCHEMA_URL.fullmatch(manifest.get("$schema", ""))
    assert match, f"$schema is not a Teams v1.x schema URL: {manifest.get('$schema')!r}"
    return match["version"]


def official_schema(version: str) -> dict[str, Any]:
    if not SCHEMA_ROOT.is_dir():
        pytest.fail(
            f"{SCHEMA_ROOT.relative_to(REPO)} is missing: run `npm ci` in {REPO} "
            "to install @microsoft/app-manifest, which ships the Teams manifest schemas"
        )
    path = SCHEMA_ROOT / "teams" / f"v{version}" / "MicrosoftTeams.schema.json"
    if not path.is_file():
        pytest.fail(
            f"@microsoft/app-manifest has no schema for manifest version {version} ({path}); "
            "update the package in package.json or declare a version it ships"
        )
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    schema = official_schema(declared_version(manifest))
    validator_class = validator_for(schema)
    # The schemas hold ECMA-262 patterns (\p{L}, in Office add-in parts a bot never uses) that
    # Python's re cannot compile, so check the schema itself with every format but "regex".
    formats = [name for name in validator_class.FORMAT_CHECKER.checkers if name != "regex"]
    meta = validator_class(validator_class.META_SCHEMA, format_checker=FormatChecker(formats))
    assert [error.message for error in meta.iter_errors(schema)] == []
    validator = validator_class(schema, format_checker=FormatChecker(formats))
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]


def png_header(data: bytes) -> tuple[int, int, int, int, int]:
    """Width, height, bit depth, colour type and interlace method from the IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    assert length == 13
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return width, height, depth, colour, interlace


def decode_png(data: bytes) -> list[list[tuple[int, ...]]]:
    """Pixels of an 8-bit, non-interlaced RGB or RGBA PNG, as rows of channel tuples."""
    width, height, depth, colour, interlace = png_header(data)
    assert (depth, interlace) == (8, 0), "expected 8 bits per channel, not interlaced"
    channels = {2: 3, 6: 4}[colour]
    compressed, offset = b"", 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"IDAT":
            compressed += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    raw = zlib.decompress(compressed)
    stride = width * channels
    previous = bytearray(stride)
    rows: list[list[tuple[int, ...]]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - up_left
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - up_left)
                nearest = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + nearest) & 0xFF
        rows.append([tuple(line[x : x + channels]) for x in range(0, stride, channels)])
        previous = line
    return rows


def test_package_holds_exactly_the_manifest_and_both_icons_at_its_root(
    package: dict[str, bytes],
) -> None:
    assert sorted(package) == PACKAGE_FILES


def test_built_manifest_satisfies_the_official_schema_it_declares(
    manifest: dict[str, Any],
) -> None:
    assert schema_errors(manifest) == []


def test_schema_check_catches_a_broken_manifest(manifest: dict[str, Any]) -> None:
    broken = copy.deepcopy(manifest)
    del broken["developer"]["privacyUrl"]
    broken["bots"][0]["botId"] = "not-a-guid"
    errors = schema_errors(broken)
    assert any("privacyUrl" in error for error in errors), errors
    assert any(error.startswith("bots/0/botId") for error in errors), errors


def test_manifest_declares_a_current_schema_version(manifest: dict[str, Any]) -> None:
    # The schemas are draft-04, which does not enforce their "const" on manifestVersion.
    version = declared_version(manifest)
    assert manifest["manifestVersion"] == version
    major, minor = (int(part) for part in version.split("."))
    # 1.29 brought supportsTargetedMessages and commandLists' triggers (slash commands).
    assert (major, minor) >= (1, 29)


def test_bot_id_is_both_the_app_id_and_the_bot_id(manifest: dict[str, Any]) -> None:
    assert manifest["id"] == BOT_ID
    assert [bot["botId"] for bot in manifest["bots"]] == [BOT_ID]


def test_every_placeholder_is_filled_from_the_options(
    package: dict[str, bytes], manifest: dict[str, Any]
) -> None:
    assert "${{" not in package["manifest.json"].decode("utf-8")
    assert manifest["version"] == "2.3.4"
    assert manifest["name"]["short"] == "Contoso Memory"
    assert manifest["name"]["full"].startswith("Contoso Memory")
    assert manifest["developer"] == {
        "name": "Contoso IT",
        "websiteUrl": "https://contoso.example/memorybot",
        "privacyUrl": "https://contoso.example/memorybot/privacy",
        "termsOfUseUrl": "https://contoso.example/memorybot/terms",
    }
    assert manifest["validDomains"] == ["memorybot.contoso.example", "*.contoso.example"]


def test_bot_converses_in_personal_chat_group_chats_and_teams(manifest: dict[str, Any]) -> None:
    (bot,) = manifest["bots"]
    assert sorted(bot["scopes"]) == ["copilot", "groupChat", "personal", "team"]
    # `export` in a personal chat sends a file consent card, which Teams shows only then.
    assert bot["supportsFiles"] is True
    assert bot["isNotificationOnly"] is False


@pytest.mark.parametrize("scope", ["personal", "copilot", "groupChat", "team"])
def test_every_scope_lists_the_memory_commands(manifest: dict[str, Any], scope: str) -> None:
    (bot,) = manifest["bots"]
    lists = [entry for entry in bot["commandLists"] if scope in entry["scopes"]]
    assert len(lists) == 1, f"{scope} needs exactly one command list"
    commands = lists[0]["commands"]
    assert [command["title"] for command in commands] == COMMANDS
    assert all(command["description"].strip() for command in commands)


def test_personal_and_group_command_lists_are_separate(manifest: dict[str, Any]) -> None:
    # What the bot remembers about you is private: group scopes describe the conversation's memory.
    (bot,) = manifest["bots"]
    scopes = [sorted(entry["scopes"]) for entry in bot["commandLists"]]
    # Copilot shows the personal list: it is a person's own chat with the agent.
    assert sorted(scopes) == [["copilot", "personal"], ["groupChat", "team"]]


def command_list(manifest: dict[str, Any], scope: str) -> dict[str, Any]:
    (bot,) = manifest["bots"]
    (found,) = [entry for entry in bot["commandLists"] if scope in entry["scopes"]]
    return cast(dict[str, Any], found)


def test_the_bot_is_a_custom_engine_agent_in_copilot(manifest: dict[str, Any]) -> None:
    (agent,) = manifest["copilotAgents"]["customEngineAgents"]
    assert agent["type"] == "bot"
    # The schema's rules it cannot check itself: the id is the bot's, which has personal scope,
    # and the app has a short name and a short description.
    assert agent["id"] == manifest["bots"][0]["botId"] == BOT_ID
    assert "personal" in manifest["bots"][0]["scopes"]
    assert "copilot" in manifest["bots"][0]["scopes"]
    assert manifest["name"]["short"].strip()
    assert manifest["description"]["short"].strip()


def test_the_copilot_disclaimer_says_what_is_kept_and_how_to_see_and_delete_it(
    manifest: dict[str, Any],
) -> None:
    (agent,) = manifest["copilotAgents"]["customEngineAgents"]
    text = agent["disclaimer"]["text"]
    assert text.startswith("Contoso Memory ")  # the app's name, filled in by the build
    for word in ("memory", "export", "forget", "AI"):
        assert re.search(rf"\b{word}\b", text), word


def test_a_longest_name_keeps_the_disclaimer_within_the_schema(tmp_path: Path) -> None:
    longest = "N" * 30  # build_app_package's limit for --name, the schema's for name.short
    result = run_build("--bot-id", BOT_ID, "--name", longest, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    built = json.loads(read_package(tmp_path / "appPackage.zip")["manifest.json"])
    assert built["copilotAgents"]["customEngineAgents"][0]["disclaimer"]["text"].startswith(longest)
    assert schema_errors(built) == []


def test_personal_commands_are_prompt_starters_that_run_the_command(
    manifest: dict[str, Any],
) -> None:
    starters = command_list(manifest, "copilot")
    assert starters == command_list(manifest, "personal")  # one list: a person's own chat
    for command in starters["commands"]:
        # A "prompt" command would send its prompt text to the model instead of the command.
        assert command.get("type", "basic") == "basic", command["title"]
        assert "prompt" not in command
        assert command["description"].strip()


def test_commands_work_with_or_without_a_slash(manifest: dict[str, Any]) -> None:
    (bot,) = manifest["bots"]
    # Required for Teams to list the bot's commands after "/" (targeted messages).
    assert bot["supportsTargetedMessages"] is True
    assert set(command_list(manifest, "personal")["triggers"]) == {"mention", "slash"}
    # In group chats and channels the bot answers only when @mentioned (bots/memory_bot.py), so
    # the commands there are offered with the @mention only.
    assert command_list(manifest, "groupChat")["triggers"] == ["mention"]
    for entry in bot["commandLists"]:
        for command in entry["commands"]:
            title = command["title"]
            understood = command_in(title)
            assert understood is not None, f"the bot does not take {title!r} as a command"
            assert command_in("/" + title) == understood, f"/{title}"


def test_schema_check_catches_a_broken_copilot_entry(manifest: dict[str, Any]) -> None:
    broken = copy.deepcopy(manifest)
    (agent,) = broken["copilotAgents"]["customEngineAgents"]
    agent["type"] = "declarative"
    agent["disclaimer"]["text"] = "x" * 501
    broken["bots"][0]["commandLists"][0]["triggers"] = ["slash", "typed"]
    errors = schema_errors(broken)
    assert any(e.startswith("copilotAgents/customEngineAgents/0/type") for e in errors), errors
    assert any("disclaimer" in e for e in errors), errors
    assert any(e.startswith("bots/0/commandLists/0/triggers") for e in errors), errors


def test_icons_have_the_sizes_teams_requires(package: dict[str, bytes]) -> None:
    assert png_header(package["color.png"])[:2] == (192, 192)
    assert png_header(package["outline.png"])[:2] == (32, 32)


def test_outline_icon_is_white_on_transparent(package: dict[str, bytes]) -> None:
    assert png_header(package["outline.png"])[3] == 6, "outline.png must be RGBA"
    pixels = [pixel for row in decode_png(package["outline.png"]) for pixel in row]
    assert all(pixel[:3] == (255, 255, 255) for pixel in pixels if pixel[3] > 0)
    alphas = {pixel[3] for pixel in pixels}
    assert 0 in alphas, "the background must be transparent"
    assert 255 in alphas, "the glyph must be opaque white"


def test_color_icon_sits_on_the_accent_colour(
    package: dict[str, bytes], manifest: dict[str, Any]
) -> None:
    accent = manifest["accentColor"].lstrip("#")
    expected = tuple(int(accent[i : i + 2], 16) for i in (0, 2, 4))
    rows = decode_png(package["color.png"])
    corners = {rows[0][0][:3], rows[0][-1][:3], rows[-1][0][:3], rows[-1][-1][:3]}
    assert corners == {expected}
    assert all(len(pixel) == 3 or pixel[3] == 255 for row in rows for pixel in row)


def test_committed_icons_are_what_make_icons_draws(tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, str(MANIFEST_DIR / "make_icons.py"), "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for icon in ("color.png", "outline.png"):
        committed = decode_png((MANIFEST_DIR / icon).read_bytes())
        assert decode_png((tmp_path / icon).read_bytes()) == committed, (
            f"appManifest/{icon} is stale: run python appManifest/make_icons.py"
        )


def test_same_inputs_build_the_same_bytes(tmp_path: Path) -> None:
    first = run_build("--bot-id", BOT_ID, "--output", "a.zip", cwd=tmp_path)
    second = run_build("--bot-id", BOT_ID, "--output", "b.zip", cwd=tmp_path)
    assert first.returncode == second.returncode == 0
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_bot_id_defaults_to_microsoft_app_id_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MicrosoftAppId=11111111-2222-3333-4444-555555555555\n")
    result = run_build(cwd=tmp_path, app_id=BOT_ID)
    assert result.returncode == 0, result.stderr
    built = json.loads(read_package(tmp_path / "appPackage.zip")["manifest.json"])
    assert built["id"] == BOT_ID


def test_bot_id_falls_back_to_microsoft_app_id_in_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"MicrosoftAppId={BOT_ID}\n")
    result = run_build(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    built = json.loads(read_package(tmp_path / "appPackage.zip")["manifest.json"])
    assert built["bots"][0]["botId"] == BOT_ID


def test_placeholder_developer_pages_are_built_with_a_warning(tmp_path: Path) -> None:
    result = run_build("--bot-id", BOT_ID, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning: --privacy-url is the placeholder" in result.stderr
    assert "warning: --terms-url is the placeholder" in result.stderr


def test_missing_bot_id_is_a_clear_error_without_a_traceback(tmp_path: Path) -> None:
    result = run_build(cwd=tmp_path)
    assert result.returncode == 2
    assert "no bot id" in result.stderr
    assert "--bot-id" in result.stderr
    assert "MicrosoftAppId" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bot_id",
    ["not-a-guid", "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}", "3f2504e0-4f89-41d3-9a0c-0305e82c330"],
)
def test_invalid_bot_id_is_a_clear_error_without_a_traceback(tmp_path: Path, bot_id: str) -> None:
    result = run_build("--bot-id", bot_id, cwd=tmp_path)
    assert result.returncode == 2
    assert "is not a GUID" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "appPackage.zip").exists()


def test_every_bad_option_is_reported_at_once(tmp_path: Path) -> None:
    result = run_build(
        "--bot-id", BOT_ID,
        "--version", "1.0",
        "--name", "A name far too long for Teams to show",
        "--privacy-url", "http://contoso.example/privacy",
        "--valid-domain", "https://contoso.example/",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    for option in ("--version", "--name", "--privacy-url", "--valid-domain"):
        assert option + " " in result.stderr
    assert "Traceback" not in result.stderr
