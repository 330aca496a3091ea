"""The Microsoft 365 Agents Toolkit project: m365agents*.yml, env/, .vscode/ and .webappignore.

Each m365agents*.yml is validated against the Toolkit's published JSON schema for the version it
declares, a byte-for-byte copy of the one in @microsoft/m365agentstoolkit-cli (toolkit_schema/,
refreshed by fetch_toolkit_schema.py; that package cannot be an npm devDependency, see there).

The schema says which actions and arguments exist; it does not say whether a run can succeed. The
other checks model what the Toolkit does with these files, as read in that package's code:
- before an action runs, every ${{NAME}} in its `with` and `env` is filled from the environment;
  a variable that is unset or empty stops the run;
- an action's `env` is set for it and the actions after it in the same run, never written down;
- what an action writes (its writeToEnvironmentFile names, and arm/deploy's Bicep outputs,
  upper-cased) is set for the actions after it and written to env/.env.<environment>, so
  later lifecycles (deploy, publish) read it too;
- teamsApp/validateManifest and teamsApp/zipAppPackage fill the manifest's placeholders the same
  way, and fail on any left unfilled.

VS Code's launch.json and tasks.json have no published schema the tests can reach (Microsoft does
not ship one on npm): they are checked as plain JSON for structure, for every name they refer to,
and for agreement with the yml files, the ports and the bot itself.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from dotenv import dotenv_values
from jsonschema.validators import validator_for

from config import SECRET_VARIABLES, settings_from
from tests.deployment.templates import (
    DEPLOYMENT,
    MAIN,
    ROOT,
    dotted,
    parameter_file_values,
    templates,
)
from tests.deployment.test_bicep import config_reads
from tests.deployment.test_deploy_script import LEFT_BEHIND, SHIPPED

pytestmark = pytest.mark.unit

SCHEMA_DIR = Path(__file__).resolve().parent / "toolkit_schema"
SCHEMA_COMMENT = re.compile(
    r"# yaml-language-server: \$schema=https://aka\.ms/m365-agents-toolkits/"
    r"(?P<version>v1\.\d+)/yaml\.schema\.json"
)
PROJECT_FILES = {
    "dev": "m365agents.yml",
    "local": "m365agents.local.yml",
    "playground": "m365agents.playground.yml",
}
LIFECYCLES = ("provision", "deploy", "publish")
PLACEHOLDER = re.compile(r"\$\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
# Variables an action writes without naming them in writeToEnvironmentFile.
INTERNAL_OUTPUTS = {
    "teamsApp/create": {"TEAMS_APP_TENANT_ID"},
    "teamsApp/update": {"TEAMS_APP_TENANT_ID"},
}
# Asked for when empty by arm/deploy (and then written to the env file), not an error.
PROMPTED = {"AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP_NAME"}
RENDERS_MANIFEST = {"teamsApp/validateManifest", "teamsApp/zipAppPackage"}
MANIFEST = ROOT / "appManifest" / "manifest.json"
VSCODE = ROOT / ".vscode"
PLAYGROUND_PACKAGE = "@microsoft/m365agentsplayground"
SECRET_WORDS = re.compile(r"key|secret|password|token|credential", re.IGNORECASE)


# ---------------------------------------------------------------- reading the project files


def project_text(environment: str) -> str:
    return (ROOT / PROJECT_FILES[environment]).read_text(encoding="utf-8")


def project(environment: str) -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(project_text(environment)))


def declared_schema_version(text: str) -> str:
    match = SCHEMA_COMMENT.fullmatch(text.splitlines()[0])
    assert match, f"the first line must declare the schema: {text.splitlines()[0]!r}"
    return match["version"]


def toolkit_schema(version: str) -> dict[str, Any]:
    path = SCHEMA_DIR / version / "yaml.schema.json"
    if not path.is_file():
        pytest.fail(
            f"no copy of the Toolkit's schema {version} in {SCHEMA_DIR.relative_to(ROOT)}: run "
            f"python -m tests.deployment.fetch_toolkit_schema --schema {version}"
        )
    return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


def schema_errors(document: Any, version: str) -> list[str]:
    schema = toolkit_schema(version)
    validator = validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def env_file(environment: str) -> dict[str, str]:
    values = dotenv_values(ROOT / "env" / f".env.{environment}")
    return {name: value or "" for name, value in values.items()}


def actions(environment: str, lifecycle: str) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], project(environment).get(lifecycle) or [])


def all_actions(environment: str) -> Iterator[dict[str, Any]]:
    for lifecycle in LIFECYCLES:
        yield from actions(environment, lifecycle)


def placeholders(node: Any) -> set[str]:
    if isinstance(node, str):
        return set(PLACEHOLDER.findall(node))
    if isinstance(node, dict):
        return {name for value in node.values() for name in placeholders(value)}
    if isinstance(node, list):
        return {name for value in node for name in placeholders(value)}
    return set()


def bicep_outputs(template_path: str) -> set[str]:
    """What arm/deploy writes for a template: each output's name, upper-cased."""
    relative = (ROOT / template_path).resolve().relative_to(DEPLOYMENT).as_posix()
    return {name.upper() for name in templates()[relative].outputs}


def outputs_of(action: dict[str, Any]) -> set[str]:
    written = set((action.get("writeToEnvironmentFile") or {}).values())
    written |= INTERNAL_OUTPUTS.get(action["uses"], set())
    if action["uses"] == "arm/deploy":
        for template in action["with"]["templates"]:
            written |= bicep_outputs(template["path"])
    return written


def unknown_placeholders(
    environment: str, env_values: Mapping[str, str], written_before: Iterable[str] = ()
) -> list[str]:
    """Every ${{NAME}} that would be unset or empty when its action runs, as 'lifecycle/action'."""
    manifest_needs = placeholders(json.loads(MANIFEST.read_text(encoding="utf-8")))
    written = {name for name, value in env_values.items() if value} | set(written_before)
    if environment == "dev":
        written |= PROMPTED
    problems = []
    for lifecycle in LIFECYCLES:
        known = set(written)  # a run starts from the env file as the runs before left it
        for index, action in enumerate(actions(environment, lifecycle)):
            where = f"{lifecycle}/{index} {action['uses']}"
            needed = placeholders(action.get("with")) | placeholders(action.get("env"))
            problems += [f"{where}: {name}" for name in sorted(needed - known)]
            known |= set(action.get("env") or {})
            if action["uses"] in RENDERS_MANIFEST:
                problems += [f"{where} manifest: {n}" for n in sorted(manifest_needs - known)]
            known |= outputs_of(action)
            written |= outputs_of(action)
    return problems


def tunnel_outputs() -> set[str]:
    """What the "Start local tunnel" task writes before the local provision runs."""
    written: set[str] = set()
    for task in tasks():
        if task.get("command") == "debug-start-local-tunnel":
            for port in task["args"]["ports"]:
                written |= set(port["writeToEnvironmentFile"].values())
    return written


def environment_file_action(environment: str) -> dict[str, Any]:
    (action,) = [
        action
        for action in actions(environment, "deploy")
        if action["uses"] == "file/createOrUpdateEnvironmentFile"
    ]
    return action


def launch() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((VSCODE / "launch.json").read_text(encoding="utf-8")))


def tasks() -> list[dict[str, Any]]:
    document = json.loads((VSCODE / "tasks.json").read_text(encoding="utf-8"))
    return cast(list[dict[str, Any]], document["tasks"])


def configuration(name: str) -> dict[str, Any]:
    (found,) = [c for c in launch()["configurations"] if c["name"] == name]
    return cast(dict[str, Any], found)


def task_closure(label: str) -> list[dict[str, Any]]:
    """The task and every task it depends on, dependencies first."""
    by_label = {task["label"]: task for task in tasks()}
    ordered: list[dict[str, Any]] = []

    def visit(name: str) -> None:
        task = by_label[name]
        for dependency in task.get("dependsOn", []):
            visit(dependency)
        if task not in ordered:
            ordered.append(task)

    visit(label)
    return ordered


def ports_checked_before(label: str) -> list[int]:
    """The ports the prerequisites check of a task's chain wants free."""
    (check,) = [t for t in task_closure(label) if "portOccupancy" in t.get("args", {})]
    return cast(list[int], check["args"]["portOccupancy"])


def workspace_path(value: str) -> str:
    assert value.startswith("${workspaceFolder}/"), value
    return value.removeprefix("${workspaceFolder}/")


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".webappignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored_by(patterns: list[str], path: str) -> bool:
    """gitignore matching for the forms .webappignore uses (checked in the test below)."""
    parts = path.split("/")
    for pattern in patterns:
        body = pattern.strip("/")
        anchored = pattern.startswith("/") or "/" in body
        for depth in range(len(parts)):
            if pattern.endswith("/") and depth == len(parts) - 1:
                continue  # a directory pattern; the last part is the file itself
            candidate = "/".join(parts[: depth + 1]) if anchored else parts[depth]
            if fnmatch.fnmatchcase(candidate, body):
                return True
    return False


def git_ignores(path: str) -> bool:
    git = shutil.which("git")
    assert git, "git is needed to check .gitignore"
    result = subprocess.run(  # noqa: S603 - read-only query, fixed argv
        [git, "check-ignore", "--quiet", "--no-index", path],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


# ---------------------------------------------------------------- the published schema


def test_schema_copies_are_the_published_files_byte_for_byte() -> None:
    source = json.loads((SCHEMA_DIR / "source.json").read_text(encoding="utf-8"))
    assert source["package"] == "@microsoft/m365agentstoolkit-cli"
    assert source["schemas"], "no schema recorded"
    for version, entry in source["schemas"].items():
        data = (SCHEMA_DIR / version / "yaml.schema.json").read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], version
        assert entry["path"] == f"package/resource/yaml-schema/{version}/yaml.schema.json"
        schema = json.loads(data)
        validator_class = validator_for(schema)
        validator_class.check_schema(schema)
        assert schema["properties"]["version"]["const"] == version


@pytest.mark.parametrize("environment", sorted(PROJECT_FILES))
def test_project_file_satisfies_the_toolkit_schema_it_declares(environment: str) -> None:
    text = project_text(environment)
    version = declared_schema_version(text)
    document = project(environment)
    assert document["version"] == version
    assert schema_errors(document, version) == []


def test_schema_check_catches_a_broken_project_file() -> None:
    version = declared_schema_version(project_text("local"))
    broken = copy.deepcopy(project("local"))
    (create,) = [a for a in broken["provision"] if a["uses"] == "botAadApp/create"]
    create["writeToEnvironmentFile"]["botPassword"] = "BOT_PASSWORD"  # a secret not marked so
    (deploy,) = broken["deploy"]
    del deploy["with"]["target"]
    errors = schema_errors(broken, version)
    assert any("BOT_PASSWORD" in error for error in errors), errors
    assert len(errors) >= 2, errors


# ---------------------------------------------------------------- variables and placeholders


@pytest.mark.parametrize("environment", sorted(PROJECT_FILES))
def test_every_placeholder_has_a_value_when_its_action_runs(environment: str) -> None:
    values = env_file(environment)
    assert values.get("TEAMSFX_ENV") == environment
    written_before = tunnel_outputs() if environment == "local" else set()
    assert unknown_placeholders(environment, values, written_before) == []


def test_the_placeholder_check_catches_a_variable_nobody_sets() -> None:
    values = env_file("dev")
    values["APP_VERSION"] = ""  # the manifest's version
    problems = unknown_placeholders("dev", values)
    assert "provision/2 teamsApp/validateManifest manifest: APP_VERSION" in problems
    assert unknown_placeholders("local", env_file("local")), "the tunnel's outputs matter"


def test_committed_env_files_hold_no_secret() -> None:
    for path in sorted((ROOT / "env").glob(".env.*")):
        if path.name.endswith(".user"):
            continue
        for name, value in (dotenv_values(path) or {}).items():
            if name.startswith("SECRET_") or name in SECRET_VARIABLES or SECRET_WORDS.search(name):
                assert not value, f"{path.name}: {name} has a value; secrets go in .user files"


def test_secrets_and_generated_files_are_git_ignored_and_the_templates_are_not() -> None:
    # .localConfigs and the .user files hold secrets; the others are generated.
    never_committed = {".localConfigs", ".localConfigs.playground", "devTools/playground/x"}
    never_committed |= {f"env/.env.{environment}.user" for environment in PROJECT_FILES}
    never_committed |= {"appPackage/build/appPackage.dev.zip", ".deployment/deployment.zip"}
    for environment in ("local", "playground"):
        target = environment_file_action(environment)["with"]["target"]
        never_committed.add(target.removeprefix("./"))
    for path in sorted(never_committed):
        assert git_ignores(path), f"{path} is not git-ignored"
    for environment in PROJECT_FILES:
        assert not git_ignores(f"env/.env.{environment}"), f"env/.env.{environment} is ignored"


# ---------------------------------------------------------------- provision and deploy (Azure)


def test_provision_deploys_the_bicep_deploy_sh_deploys_with_the_same_parameters() -> None:
    (arm,) = [a for a in actions("dev", "provision") if a["uses"] == "arm/deploy"]
    (template,) = arm["with"]["templates"]
    assert (ROOT / template["path"]).resolve() == DEPLOYMENT / MAIN
    toolkit = json.loads((ROOT / template["parameters"]).read_text(encoding="utf-8"))
    values = {name: entry["value"] for name, entry in toolkit["parameters"].items()}
    # deploy.sh passes namePrefix on the command line; everything else is the same file.
    assert values.pop("namePrefix") == "${{RESOURCE_NAME_PREFIX}}"
    assert values == parameter_file_values()

    prefix = env_file("dev")["RESOURCE_NAME_PREFIX"]
    script = (DEPLOYMENT / "deploy.sh").read_text(encoding="utf-8")
    rule = re.search(r"\$prefix =~ (\S+) \]\]", script)
    assert rule, "deploy.sh no longer checks the prefix"
    assert re.fullmatch(rule.group(1).strip("^$"), prefix), prefix
    decorators = templates()[MAIN].parameters["namePrefix"]["decorators"]
    limits = {d["type"]: d["argument"] for d in decorators if d["type"].endswith("_length")}
    assert int(limits["min_length"]) <= len(prefix) <= int(limits["max_length"])


def test_the_app_id_is_the_bot_id_in_every_environment() -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["id"] == manifest["bots"][0]["botId"] == "${{BOT_ID}}"
    bot_id = {"dev": "${{BOTAPPID}}", "local": "${{BOT_ID}}"}
    # dev: the managed identity's client id (the Bicep's botAppId output, as deploy.sh reads it)
    assert "BOTAPPID" in bicep_outputs("deployment/main.bicep")
    for environment, expected in bot_id.items():
        for action in all_actions(environment):
            env = action.get("env") or {}
            if action["uses"] == "teamsApp/create":
                assert env["TEAMS_APP_ID"] == expected, environment
            if action["uses"] in RENDERS_MANIFEST and environment == "dev":
                assert env["BOT_ID"] == expected
            if action["uses"] == "botFramework/create":
                assert action["with"]["botId"] == expected
    (aad,) = [a for a in actions("local", "provision") if a["uses"] == "botAadApp/create"]
    assert aad["writeToEnvironmentFile"]["botId"] == "BOT_ID"


def test_every_package_built_is_validated_before_it_is_uploaded() -> None:
    for environment in ("dev", "local"):
        for lifecycle in ("provision", "publish"):
            uses = [a["uses"] for a in actions(environment, lifecycle)]
            if not uses:
                continue  # local has no publish
            packages = [a for a in actions(environment, lifecycle) if "appPackagePath" in a["with"]]
            zips = {
                a["with"]["outputZipPath"]
                for a in actions(environment, lifecycle)
                if a["uses"] == "teamsApp/zipAppPackage"
            }
            assert len(zips) == 1, (environment, lifecycle)
            assert {a["with"]["appPackagePath"] for a in packages} == zips
            order = uses.index
            assert order("teamsApp/validateManifest") < order("teamsApp/zipAppPackage")
            assert order("teamsApp/zipAppPackage") < order("teamsApp/validateAppPackage")
            assert order("teamsApp/validateAppPackage") < order("teamsApp/update")
            for action in actions(environment, lifecycle):
                if action["uses"] in RENDERS_MANIFEST:
                    assert (ROOT / action["with"]["manifestPath"]).resolve() == MANIFEST
    publish = [a["uses"] for a in actions("dev", "publish")]
    assert publish[-1] == "teamsApp/publishAppPackage"


def test_zip_deploy_ships_the_repository_to_the_web_app_the_bicep_creates() -> None:
    (deploy,) = actions("dev", "deploy")
    assert deploy["uses"] == "azureAppService/zipDeploy"
    assert (ROOT / deploy["with"]["artifactFolder"]).resolve() == ROOT
    assert (ROOT / deploy["with"]["ignoreFile"]).resolve() == ROOT / ".webappignore"
    (variable,) = placeholders(deploy["with"]["resourceId"])
    assert deploy["with"]["resourceId"] == f"${{{{{variable}}}}}"
    web_app = templates()["modules/web-app.bicep"]
    assert dotted(web_app.outputs["id"]["value"]) == "site.id"
    assert variable == "WEBAPPRESOURCEID"
    assert variable in bicep_outputs("deployment/main.bicep")


def test_webappignore_leaves_out_what_deploy_sh_leaves_out() -> None:
    patterns = ignore_patterns()
    for pattern in patterns:
        # Only the forms ignored_by models: no negation, no escapes, no character classes.
        assert re.fullmatch(r"/?[A-Za-z0-9_.*-]+(/[A-Za-z0-9_.*-]+)*/?", pattern), pattern
    shipped = [path for path in SHIPPED if ignored_by(patterns, path)]
    assert shipped == [], "the bot needs these"
    assert ignored_by(patterns, "memory/cosmos/store.py") is False
    assert [path for path in LEFT_BEHIND if not ignored_by(patterns, path)] == []
    for path in ("bots/__pycache__/x.pyc", ".venv-checkov/bin/python", "env/.env.dev.user"):
        assert ignored_by(patterns, path), path


# ---------------------------------------------------------------- the bot's own variables


def rendered_environment(environment: str) -> dict[str, str]:
    """The file the deploy lifecycle writes for the debugger, with stand-in values filled in."""
    stand_ins = {
        "BOT_ID": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        "SECRET_BOT_PASSWORD": "a client secret",
        "TEAMS_APP_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    }
    envs = environment_file_action(environment)["with"]["envs"]
    return {
        name: PLACEHOLDER.sub(lambda match: stand_ins[match.group(1)], str(value))
        for name, value in envs.items()
    }


@pytest.mark.parametrize("environment", ["local", "playground"])
def test_the_debugger_gets_variables_the_bot_reads(environment: str) -> None:
    envs = environment_file_action(environment)["with"]["envs"]
    assert set(envs) <= set(config_reads()), "names config.py does not read"
    for name in SECRET_VARIABLES & set(envs):
        # Never a secret in a committed file: empty, or a SECRET_ variable from a .user file.
        assert envs[name] == "" or re.fullmatch(r"\$\{\{SECRET_[A-Z0-9_]+\}\}", envs[name])


def test_debug_in_teams_runs_the_bot_with_its_single_tenant_identity() -> None:
    settings = settings_from(rendered_environment("local"))
    assert settings.auth_enabled
    assert settings.app_id == "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    assert settings.app_password == "a client secret"
    # botFramework/create registers a single-tenant bot; its tenant is the signed-in account's.
    assert settings.app_type == "SingleTenant"
    assert settings.app_tenant_id == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    (tunnel,) = [t for t in tasks() if t.get("command") == "debug-start-local-tunnel"]
    assert [port["portNumber"] for port in tunnel["args"]["ports"]] == [settings.port]
    assert ports_checked_before("Start Teams debugging") == [settings.port]


def test_debug_in_playground_runs_the_bot_without_an_app_id_on_the_playgrounds_endpoint() -> None:
    settings = settings_from(rendered_environment("playground"))
    assert not settings.auth_enabled  # the Playground sends no Bot Framework token
    assert settings.host == "127.0.0.1"
    args = configuration("Start Microsoft 365 Agents Playground")["args"]
    assert args[0] == "start"
    valued = ("--app-endpoint", "--channel-id", "--port")
    option = {name: args[args.index(name) + 1] for name in valued}
    assert "--disable-telemetry" in args  # as scripts/playground.sh runs it
    assert option["--app-endpoint"] == f"http://127.0.0.1:{settings.port}/api/messages"
    assert option["--channel-id"] == "msteams"
    playground_port = int(option["--port"])
    assert int(env_file("playground")["TEAMSAPPTESTER_PORT"]) == playground_port
    assert sorted(ports_checked_before("Deploy (Playground)")) == [settings.port, playground_port]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.integration
def test_the_playground_starts_once_the_bot_says_where_it_listens(tmp_path: Path) -> None:
    """serverReadyAction starts the Playground when the bot's start-up line matches."""
    ready = configuration("Start MemoryBot (Playground)")["serverReadyAction"]
    assert configuration(ready["name"])["type"] == "node"
    pattern = re.compile(ready["pattern"])  # the same syntax in JavaScript and Python
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "AZURE_"))},
        **rendered_environment("playground"),
        "PORT": str(port),
        "SQLITE_PATH": str(tmp_path / "memory.db"),
        "OPENAI_BASE_URL": "",
        "OPENAI_API_KEY": "",
        "COSMOS_ENDPOINT": "",
        "MEMORY_STORE": "sqlite",
    }
    lines: list[str] = []
    match = None
    with subprocess.Popen(  # noqa: S603 - the bot under test, fixed argv
        [sys.executable, str(ROOT / "app.py")],
        cwd=tmp_path,  # no .env of the repository
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as bot:
        try:
            assert bot.stderr is not None
            deadline = time.monotonic() + 60
            while match is None and time.monotonic() < deadline:
                line = bot.stderr.readline()
                if not line:
                    break
                lines.append(line)
                match = pattern.search(line)
        finally:
            bot.terminate()
            bot.communicate(timeout=30)
    assert match, "".join(lines)
    assert match.group(1) == f"http://127.0.0.1:{port}/api/messages"
    assert "Emulator mode" in match.string


# ---------------------------------------------------------------- VS Code


def test_launch_and_tasks_are_plain_json_and_every_name_they_use_exists() -> None:
    document = launch()
    names = [c["name"] for c in document["configurations"]]
    compounds = {c["name"]: c for c in document["compounds"]}
    labels = [task["label"] for task in tasks()]
    assert len(set(names)) == len(names)
    assert len(set(labels)) == len(labels)
    assert not set(names) & set(compounds)
    assert {"Debug in Playground", "Debug in Teams"} <= set(compounds)
    for compound in compounds.values():
        assert set(compound["configurations"]) <= set(names), compound["name"]
        assert set(compound.get("cascadeTerminateToConfigurations", [])) <= set(names)
        assert compound["preLaunchTask"] in labels, compound["name"]
    for config in document["configurations"]:
        if "preLaunchTask" in config:
            assert config["preLaunchTask"] in labels, config["name"]
        if "serverReadyAction" in config:
            assert config["serverReadyAction"]["name"] in names, config["name"]
    for task in tasks():
        assert set(task.get("dependsOn", [])) <= set(labels), task["label"]
    recommended = json.loads((VSCODE / "extensions.json").read_text(encoding="utf-8"))
    assert "TeamsDevApp.ms-teams-vscode-extension" in recommended["recommendations"]


@pytest.mark.parametrize(
    ("compound", "environment", "bot"),
    [
        ("Debug in Playground", "playground", "Start MemoryBot (Playground)"),
        ("Debug in Teams", "local", "Start MemoryBot (Teams)"),
        ("Debug in Teams (Chrome)", "local", "Start MemoryBot (Teams)"),
    ],
)
def test_each_debug_target_runs_its_toolkit_environment_and_the_bot_reads_what_it_writes(
    compound: str, environment: str, bot: str
) -> None:
    (found,) = [c for c in launch()["compounds"] if c["name"] == compound]
    assert bot in found["configurations"]
    runs = [
        (task["command"], task["args"]["env"])
        for task in task_closure(found["preLaunchTask"])
        if task.get("type") == "teamsfx" and task["command"] in LIFECYCLES
    ]
    assert {env for _, env in runs} == {environment}
    lifecycles = [command for command, _ in runs]
    assert lifecycles == [lc for lc in LIFECYCLES if lc in lifecycles], "out of order"
    assert "deploy" in lifecycles  # the step that writes the bot's variables
    for lifecycle in lifecycles:
        assert actions(environment, lifecycle), f"{PROJECT_FILES[environment]} has no {lifecycle}"
    config = configuration(bot)
    assert config["type"] == "debugpy"
    assert (ROOT / workspace_path(config["program"])).resolve() == ROOT / "app.py"
    assert config["cwd"] == "${workspaceFolder}"
    target = environment_file_action(environment)["with"]["target"].removeprefix("./")
    assert workspace_path(config["envFile"]) == target
    # The project's own virtual environment, as scripts/venv.sh makes it.
    assert workspace_path(config["python"]) == ".venv/bin/python"
    assert ".venv/bin/python" in (ROOT / "scripts" / "venv.sh").read_text(encoding="utf-8")
    assert workspace_path(config["windows"]["python"]) == ".venv/Scripts/python.exe"


def test_the_playground_is_the_version_package_json_pins() -> None:
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    pinned = package["devDependencies"][PLAYGROUND_PACKAGE]
    (install,) = [a for a in actions("playground", "deploy") if a["uses"] == "devTool/install"]
    assert install["with"]["testTool"]["version"] == pinned
    installed = ROOT / "node_modules" / PLAYGROUND_PACKAGE / "package.json"
    if not installed.is_file():
        pytest.fail(f"{installed.relative_to(ROOT)} is missing: run `npm ci` in {ROOT}")
    bin_path = json.loads(installed.read_text(encoding="utf-8"))["bin"]["agentsplayground"]
    symlink = install["with"]["testTool"]["symlinkDir"].removeprefix("./")
    program = configuration("Start Microsoft 365 Agents Playground")["program"]
    expected = f"{symlink}/node_modules/{PLAYGROUND_PACKAGE}/{bin_path.removeprefix('./')}"
    assert workspace_path(program) == expected
