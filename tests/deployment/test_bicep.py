"""The Bicep creates what the bot needs, wired as the code expects, and never hands out a secret.

Checked offline by parsing deployment/*.bicep (see templates.py). Expected values come from the
code itself: the partition key from memory/cosmos/, the default time to live from config.py,
setting names from what config.py reads, secret names from config.SECRET_VARIABLES.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from config import SECRET_VARIABLES, Settings, settings_from
from memory.cosmos import INDEXING_POLICY, PARTITION_KEY_PATH
from memory.cosmos.provisioning import (
    FULL_TEXT_PATH,
    VECTOR_PATH,
    has_full_text,
    vector_dimensions,
)
from tests.deployment.templates import (
    MAIN,
    ROOT,
    Scope,
    Template,
    Unresolved,
    all_resources,
    app_setting_expressions,
    dotted,
    function_names,
    main_scope,
    module_symbol,
    module_template,
    parameter_file_values,
    templates,
    walk,
)

pytestmark = pytest.mark.unit

WEB_APP = "modules/web-app.bicep"
COSMOS = "modules/cosmos.bicep"
OPENAI = "modules/openai.bicep"
BOT = "modules/bot.bicep"
MONITORING = "modules/monitoring.bicep"
IDENTITY = "modules/identity.bicep"

REQUIRED_RESOURCES = {
    "Microsoft.ManagedIdentity/userAssignedIdentities",
    "Microsoft.BotService/botServices",
    "Microsoft.BotService/botServices/channels",
    "Microsoft.Web/serverfarms",
    "Microsoft.Web/sites",
    "Microsoft.DocumentDB/databaseAccounts",
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases",
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers",
    "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
    "Microsoft.CognitiveServices/accounts",
    "Microsoft.CognitiveServices/accounts/deployments",
    "Microsoft.Authorization/roleAssignments",
    "Microsoft.Insights/components",
    "Microsoft.OperationalInsights/workspaces",
}
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"
OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"

# App settings read by something other than config.py, and why they are there.
READ_ELSEWHERE = {
    "AZURE_CLIENT_ID": "azure-identity: DefaultAzureCredential picks the user-assigned identity",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "azure-monitor-opentelemetry: where traces go",
    "SCM_DO_BUILD_DURING_DEPLOYMENT": "App Service: install requirements.txt on zip deploy",
    # The memory issue's recall reads it; config.py may not read it yet.
    "AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT": "memory recall: the embeddings deployment",
}
PRODUCTION_SETTINGS = {
    "MicrosoftAppId",
    "MicrosoftAppType",
    "MicrosoftAppTenantId",
    "AZURE_CLIENT_ID",
    "MEMORY_STORE",
    "COSMOS_ENDPOINT",
    "COSMOS_DATABASE",
    "COSMOS_CONTAINER",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_DEPLOYMENT",
    "AZURE_OPENAI_API_VERSION",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
}
SECRET_WORDS = re.compile(r"key|secret|password|token|connectionstring|credential", re.IGNORECASE)
# Azure resource name limits for names built from the prefix (module, parameter): max length.
NAME_LIMITS = {
    (IDENTITY, "name"): 128,
    (MONITORING, "workspaceName"): 63,
    (MONITORING, "appInsightsName"): 260,
    (COSMOS, "accountName"): 44,
    (OPENAI, "accountName"): 64,
    (WEB_APP, "planName"): 60,
    (WEB_APP, "appName"): 60,
    (BOT, "name"): 64,
}

# read.<kind>("NAME", ...), perhaps with a comment before the name.
_CONFIG_READ = re.compile(
    r'\bread\.(?P<kind>\w+)\(\s*(?:#[^\n]*\n\s*)?"(?P<name>[A-Za-z_][A-Za-z0-9_]*)"'
)


def config_reads() -> dict[str, set[str]]:
    """Each variable config.py reads, with how (text, url, whole, flag, choice, seconds)."""
    reads: dict[str, set[str]] = {}
    source = (ROOT / "config.py").read_text(encoding="utf-8")
    for match in _CONFIG_READ.finditer(source):
        reads.setdefault(match["name"], set()).add(match["kind"])
    assert len(reads) > 20, 'config.py no longer reads settings as read.<kind>("NAME"...)'
    return reads


def template(name: str) -> Template:
    return templates()[name]


def scope_of(module_path: str, main: Scope | None = None) -> Scope:
    main = main or main_scope()
    return main.module(module_symbol(main.template, module_path))


def test_every_template_parses_and_main_calls_every_module() -> None:
    found = templates()
    modules = {name for name in found if name != MAIN}
    assert modules == {WEB_APP, COSMOS, OPENAI, BOT, MONITORING, IDENTITY}
    main = found[MAIN]
    called = {scope_of(name).template.name for name in modules}
    assert called == modules
    assert main.parsed["globals"]["scope"]["value"] == "resourceGroup"


def test_declares_every_resource_the_bot_needs() -> None:
    declared = {r.type for r in all_resources() if not r.existing}
    assert declared >= REQUIRED_RESOURCES, REQUIRED_RESOURCES - declared


def test_the_managed_identity_is_the_bots_only_identity() -> None:
    identities = [r for r in all_resources() if "identity" in r.config]
    assert [r.type for r in identities] == ["Microsoft.Web/sites"]
    identity = identities[0].config["identity"]
    assert identity["type"] == "UserAssigned"
    assert list(identity["userAssignedIdentities"]) == ["'${identityId}'"]
    call = template(MAIN).modules["webApp"]["config"]["params"]
    assert dotted(call["identityId"]) == "identity.outputs.id"
    assert dotted(call["identityClientId"]) == "identity.outputs.clientId"
    settings = app_setting_expressions(template(WEB_APP))
    assert settings["AZURE_CLIENT_ID"] == settings["MicrosoftAppId"] == "identityClientId"


def test_bot_authenticates_as_the_managed_identity_with_teams_on() -> None:
    bot = template(BOT).resource("Microsoft.BotService/botServices")
    properties = bot.properties
    assert bot.config["kind"] == "azurebot"
    assert properties["msaAppType"] == "UserAssignedMSI"
    assert properties["msaAppId"] == "identityClientId"
    assert properties["msaAppMSIResourceId"] == "identityId"
    assert dotted(properties["msaAppTenantId"]) is None  # tenant().tenantId: this tenant
    assert "tenant" in function_names(properties["msaAppTenantId"])
    assert properties["endpoint"] == "https://${webAppHostName}/api/messages"

    teams = template(BOT).resource("Microsoft.BotService/botServices/channels")
    assert teams.config["name"] == "MsTeamsChannel"
    assert teams.properties["channelName"] == "MsTeamsChannel"
    assert teams.properties["properties"]["isEnabled"] is True

    call = template(MAIN).modules["bot"]["config"]["params"]
    assert dotted(call["webAppHostName"]) == "webApp.outputs.defaultHostName"
    assert dotted(call["identityId"]) == "identity.outputs.id"
    assert dotted(call["identityClientId"]) == "identity.outputs.clientId"


def test_web_app_runs_python_311_over_https_with_health_checks() -> None:
    web = template(WEB_APP)
    plan = web.resource("Microsoft.Web/serverfarms")
    assert plan.config["kind"] == "linux"
    assert plan.properties["reserved"] is True

    site = web.resource("Microsoft.Web/sites")
    assert site.properties["httpsOnly"] is True
    config = site.properties["siteConfig"]
    assert config["linuxFxVersion"] == "PYTHON|3.11"
    assert config["appCommandLine"] == "python app.py"
    assert config["healthCheckPath"] == "/readyz"
    assert config["minTlsVersion"] == "1.2"
    assert config["ftpsState"] == "Disabled"
    basic_auth = {
        r.config["name"]: r.properties["allow"]
        for r in web.resources()
        if r.type == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    }
    assert basic_auth == {"ftp": False, "scm": False}


def test_cosmos_db_is_serverless_by_default_and_takes_no_keys() -> None:
    cosmos = scope_of(COSMOS)
    account = cosmos.template.resource("Microsoft.DocumentDB/databaseAccounts")
    properties = cosmos.evaluate(
        {k: v for k, v in account.properties.items() if k in {"capabilities", "disableLocalAuth"}}
    )
    assert properties == {"capabilities": [{"name": "EnableServerless"}], "disableLocalAuth": True}
    assert account.properties["disableKeyBasedMetadataWriteAccess"] is True
    assert cosmos.evaluate("serverless") is True


def container_of(main: Scope) -> dict[str, Any]:
    """The memory container as the deployment `main` makes it."""
    cosmos = scope_of(COSMOS, main)
    container = cosmos.template.resource(
        "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers"
    )
    resource: dict[str, Any] = cosmos.evaluate(container.properties["resource"])
    return resource


def capabilities_of(main: Scope) -> list[str]:
    cosmos = scope_of(COSMOS, main)
    account = cosmos.template.resource("Microsoft.DocumentDB/databaseAccounts")
    return [c["name"] for c in cosmos.evaluate(account.properties["capabilities"])]


def test_cosmos_container_is_the_one_the_store_expects() -> None:
    cosmos = scope_of(COSMOS)
    container = cosmos.template.resource(
        "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers"
    )
    resource = container_of(main_scope())
    assert resource["partitionKey"]["paths"] == [PARTITION_KEY_PATH]
    assert resource["defaultTtl"] == Settings().memory_ttl_days * 86_400
    assert cosmos.evaluate(container.config["name"]) == Settings().cosmos_container
    database = cosmos.template.resource("Microsoft.DocumentDB/databaseAccounts/sqlDatabases")
    assert cosmos.evaluate(database.config["name"]) == Settings().cosmos_database
    # By default, what a deployment made before these searches existed has: redeploying over it
    # changes nothing Cosmos DB cannot change on an existing account and container.
    assert resource["indexingPolicy"] == INDEXING_POLICY
    assert "fullTextPolicy" not in resource
    assert "vectorEmbeddingPolicy" not in resource
    assert not has_full_text(resource)
    assert vector_dimensions(resource) is None


def test_full_text_and_vector_search_are_what_the_store_looks_for_when_asked_for() -> None:
    main = main_scope(cosmosFullTextSearch=True, cosmosVectorSearch=True)
    resource = container_of(main)
    assert resource["indexingPolicy"] == {
        **INDEXING_POLICY,
        "fullTextIndexes": [{"path": FULL_TEXT_PATH}],
        "vectorIndexes": [{"path": VECTOR_PATH, "type": "quantizedFlat"}],
    }
    # The store finds the searches the deployment gives it (and uses them), vector search for
    # embeddings of the deployed embeddings model's size.
    assert has_full_text(resource)
    assert vector_dimensions(resource) == 1536
    assert capabilities_of(main) == [
        "EnableServerless",
        "EnableNoSQLFullTextSearch",
        "EnableNoSQLVectorSearch",
    ]
    bigger = main_scope(cosmosVectorSearch=True, embeddingsDimensions=3072)
    assert vector_dimensions(container_of(bigger)) == 3072
    assert not has_full_text(container_of(bigger))  # each on its own


def test_vector_search_is_left_out_with_provisioned_throughput() -> None:
    """The database's shared throughput, which Cosmos DB's vector search does not support."""
    main = main_scope(cosmosServerless=False, cosmosFullTextSearch=True, cosmosVectorSearch=True)
    assert capabilities_of(main) == ["EnableNoSQLFullTextSearch"]
    resource = container_of(main)
    assert has_full_text(resource)
    assert vector_dimensions(resource) is None
    assert "vectorIndexes" not in resource["indexingPolicy"]


def test_memory_lifetime_is_one_parameter_for_the_container_and_the_app() -> None:
    main = main_scope(memoryTtlDays=30)
    assert container_of(main)["defaultTtl"] == 30 * 86_400
    web = scope_of(WEB_APP, main)
    assert web.evaluate(app_setting_expressions(web.template)["MEMORY_TTL_DAYS"]) == "30"


def test_openai_has_a_chat_deployment_and_embeddings_unless_turned_off() -> None:
    openai = scope_of(OPENAI)
    account = openai.template.resource("Microsoft.CognitiveServices/accounts")
    assert account.config["kind"] == "OpenAI"
    assert account.properties["disableLocalAuth"] is True
    assert account.properties["customSubDomainName"] == "accountName"

    deployments = {
        r.symbol: r
        for r in openai.template.resources()
        if r.type == "Microsoft.CognitiveServices/accounts/deployments"
    }
    assert set(deployments) == {"chat", "embeddings"}
    assert deployments["chat"].condition is None
    assert deployments["embeddings"].condition == "deployEmbeddings"
    assert openai.evaluate("deployEmbeddings") is True
    assert main_scope().template.parameters["deployEmbeddings"]["default"] is True
    chat_model = openai.evaluate(deployments["chat"].properties["model"])
    assert chat_model == {"format": "OpenAI", "name": "gpt-4o-mini", "version": "2024-07-18"}
    assert openai.evaluate(deployments["chat"].config["name"]) == "gpt-4o-mini"


def test_the_identity_gets_cosmos_data_and_openai_user_roles_and_nothing_more() -> None:
    assignments = [
        r
        for r in all_resources()
        if r.type.lower().endswith(("roleassignments", "roledefinitions"))
    ]
    assert sorted(r.type for r in assignments) == [
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
    ]
    cosmos = scope_of(COSMOS)
    data = cosmos.template.resource("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments")
    assert data.properties["roleDefinitionId"] == (
        "${account.id}/sqlRoleDefinitions/${dataContributorRoleId}"
    )
    assert cosmos.evaluate("dataContributorRoleId") == COSMOS_DATA_CONTRIBUTOR
    assert data.properties["principalId"] == "dataContributorPrincipalId"
    assert data.properties["scope"] == "${account.id}/dbs/${database.name}"

    openai = scope_of(OPENAI)
    user = openai.template.resource("Microsoft.Authorization/roleAssignments")
    assert user.config["scope"] == "account"
    role = user.properties["roleDefinitionId"]["function"]
    assert role["type"] == "subscription_resource_id"
    assert openai.evaluate(role["parameters"]["resource_name_1"]) == OPENAI_USER
    assert user.properties["principalId"] == "openAiUserPrincipalId"
    assert user.properties["principalType"] == "ServicePrincipal"

    calls = template(MAIN).modules
    principal = "identity.outputs.principalId"
    assert dotted(calls["cosmos"]["config"]["params"]["dataContributorPrincipalId"]) == principal
    assert dotted(calls["openAi"]["config"]["params"]["openAiUserPrincipalId"]) == principal


def test_application_insights_keeps_its_data_in_log_analytics() -> None:
    monitoring = template(MONITORING)
    component = monitoring.resource("Microsoft.Insights/components")
    assert dotted(component.properties["WorkspaceResourceId"]) == "workspace.id"
    settings = app_setting_expressions(template(WEB_APP))
    connection = dotted(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"])
    assert connection == "appInsights.properties.ConnectionString"
    insights = template(WEB_APP).section("resources")["appInsights"]
    assert insights["type"] == "Microsoft.Insights/components"
    assert insights["existing"] is True


def test_no_output_parameter_or_setting_carries_a_key_or_secret() -> None:
    for bicep in templates().values():
        code = bicep.code()
        assert not re.search(r"\blist\w*\s*\(", code, re.IGNORECASE), bicep.name
        for word in ("connectionStrings", "AccountKey", "MasterKey", "SharedAccessKey"):
            assert word.lower() not in code.lower(), (bicep.name, word)
        called = function_names(bicep.parsed)
        assert not {name for name in called if name.lower().startswith("list")}, bicep.name
        for name, output in bicep.outputs.items():
            assert not SECRET_WORDS.search(name), (bicep.name, name)
            assert not any(d["type"] == "secure" for d in output["decorators"]), (bicep.name, name)
        for name, parameter in bicep.parameters.items():
            assert not any(d["type"] == "secure" for d in parameter["decorators"]), name
            assert not SECRET_WORDS.search(name), (bicep.name, name)
    assert not {n for n in parameter_file_values() if SECRET_WORDS.search(n)}

    settings = app_setting_expressions(template(WEB_APP))
    assert not set(settings) & SECRET_VARIABLES
    for name, value in settings.items():
        for item in walk(value):
            chain = dotted(item) if isinstance(item, dict) else None
            if chain and "connectionstring" in chain.lower():
                # The Application Insights connection string identifies where to send traces;
                # it grants no access to data. Nothing else may be a connection string.
                assert name == "APPLICATIONINSIGHTS_CONNECTION_STRING", name


def test_app_settings_are_names_the_code_reads() -> None:
    settings = set(app_setting_expressions(template(WEB_APP)))
    unknown = settings - set(config_reads()) - set(READ_ELSEWHERE)
    assert not unknown, f"app settings nothing reads: {sorted(unknown)}"
    missing = PRODUCTION_SETTINGS - settings
    assert not missing, f"app settings production needs: {sorted(missing)}"
    # App Service chooses the port and passes it as PORT; HOST follows from MicrosoftAppId.
    assert not settings & {"PORT", "HOST", "WEBSITES_PORT"}


def test_app_settings_start_the_bot_with_cosmos_azure_openai_and_managed_identity() -> None:
    reads = config_reads()
    web = scope_of(WEB_APP)
    environment = {}
    for name, expression in app_setting_expressions(web.template).items():
        try:
            value = web.evaluate(expression)
        except Unresolved:  # known only in Azure: stand in something of the right form
            kinds = reads.get(name, set())
            value = "https://placeholder.example/" if "url" in kinds else "placeholder"
        environment[name] = str(value)

    settings = settings_from(environment)
    assert settings.memory_store == "cosmos"
    assert settings.model_kind == "azure-openai"
    assert settings.app_type == "UserAssignedMSI"
    assert settings.auth_enabled
    assert settings.host == "0.0.0.0"  # noqa: S104 - App Service routes to it
    assert settings.azure_openai_deployment == "gpt-4o-mini"
    assert settings.azure_openai_api_version == Settings().azure_openai_api_version
    assert (settings.cosmos_database, settings.cosmos_container) == (
        Settings().cosmos_database,
        Settings().cosmos_container,
    )
    assert not settings.cosmos_key
    assert not settings.azure_openai_api_key
    assert not settings.app_password


def test_parameters_file_sets_only_parameters_main_declares() -> None:
    declared = template(MAIN).parameters
    values = parameter_file_values()
    assert set(values) <= set(declared), set(values) - set(declared)
    kinds = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}
    for name, value in values.items():
        assert type(value) is kinds[declared[name]["type"]], name
        for decorator in declared[name]["decorators"]:
            if decorator["type"] == "min_value":
                assert value >= decorator["argument"], name
            if decorator["type"] == "max_value":
                assert value <= decorator["argument"], name
            if decorator["type"] == "allowed":
                assert value in decorator["argument"], name
    # deploy.sh passes the prefix and the location; every other parameter has a value.
    needed = {name for name, p in declared.items() if p.get("default") is None}
    assert needed - set(values) == {"namePrefix"}


def test_names_built_from_the_longest_prefix_fit_azure_limits() -> None:
    main = template(MAIN)
    prefix = main.parameters["namePrefix"]
    longest = next(d["argument"] for d in prefix["decorators"] if d["type"] == "max_length")
    assert main.variables["baseName"]["value"]["function"]["type"] == "to_lower"
    suffix = main.variables["suffix"]["value"]["function"]
    assert suffix["type"] == "take"
    assert suffix["parameters"]["number_to_take"] == 6
    base_name = "x" * (longest + len("-") + 6)  # toLower('${namePrefix}-${suffix}')
    for (module_path, parameter), most in NAME_LIMITS.items():
        symbol = module_symbol(main, module_path)
        assert parameter in module_template(main, symbol).parameters, (module_path, parameter)
        name = main.modules[symbol]["config"]["params"][parameter]
        assert isinstance(name, str), name
        assert name.endswith("${baseName}"), name
        length = len(name.replace("${baseName}", base_name))
        assert length <= most, (module_path, parameter, length)
