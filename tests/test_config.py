"""config.py: one settings object, every problem reported at once, secrets never echoed."""

from pathlib import Path

import pytest

from config import ConfigError, load_settings, settings_from

pytestmark = pytest.mark.unit


def test_nothing_configured_means_sqlite_offline_and_emulator_mode() -> None:
    settings = settings_from({})
    assert settings.memory_store == "sqlite"
    assert settings.model_kind == "offline"
    assert settings.port == 3978
    assert settings.host == "127.0.0.1"
    assert not settings.auth_enabled
    assert settings.memory_max_messages == 20
    assert settings.memory_summary_concurrency == 4
    assert settings_from({"MEMORY_SUMMARY_CONCURRENCY": "1"}).memory_summary_concurrency == 1


def test_cosmos_endpoint_makes_cosmos_the_default_store() -> None:
    settings = settings_from({"COSMOS_ENDPOINT": "https://acct.documents.azure.com:443/"})
    assert settings.memory_store == "cosmos"


def test_every_bad_variable_is_named_in_one_error() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from(
            {
                "PORT": "eighty",
                "MEMORY_MAX_MESSAGES": "-3",
                "MEMORY_SUMMARY_CONCURRENCY": "0",
                "COSMOS_VERIFY_TLS": "maybe",
                "MEMORY_STORE": "postgres",
                "AZURE_OPENAI_ENDPOINT": "not a url",
                "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
            }
        )
    message = str(caught.value)
    for name in (
        "PORT",
        "MEMORY_MAX_MESSAGES",
        "MEMORY_SUMMARY_CONCURRENCY",
        "COSMOS_VERIFY_TLS",
        "MEMORY_STORE",
        "AZURE_OPENAI_ENDPOINT",
    ):
        assert name in message
    assert "whole number from 1 to 65535" in message
    assert len(caught.value.problems) == 6


def test_secrets_are_not_echoed_in_errors_or_repr() -> None:
    secret = "sk-very-secret-value"
    with pytest.raises(ConfigError) as caught:
        settings_from({"MicrosoftAppId": "app", "MicrosoftAppType": "SingleTenant"})
    assert "MicrosoftAppPassword" in str(caught.value)
    assert "MicrosoftAppTenantId" in str(caught.value)

    settings = settings_from(
        {
            "OPENAI_API_KEY": secret,
            "OPENAI_MODEL": "m",
            "COSMOS_KEY": secret,
            "MicrosoftAppId": "a",
            "MicrosoftAppPassword": secret,
        }
    )
    assert secret not in repr(settings)


def test_model_selection_needs_its_companion_variables() -> None:
    with pytest.raises(ConfigError, match="AZURE_OPENAI_DEPLOYMENT"):
        settings_from({"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com/"})
    with pytest.raises(ConfigError, match="OPENAI_MODEL"):
        settings_from({"OPENAI_BASE_URL": "http://localhost:11434/v1"})
    azure = settings_from(
        {"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com/", "AZURE_OPENAI_DEPLOYMENT": "gpt"}
    )
    assert (azure.model_kind, azure.model_name) == ("azure-openai", "gpt")
    compatible = settings_from(
        {"OPENAI_BASE_URL": "http://localhost:11434/v1", "OPENAI_MODEL": "l"}
    )
    assert (compatible.model_kind, compatible.model_name) == ("openai-compatible", "l")


def test_user_assigned_identity_needs_no_password_but_a_tenant() -> None:
    settings = settings_from(
        {"MicrosoftAppId": "id", "MicrosoftAppType": "userassignedmsi", "MicrosoftAppTenantId": "t"}
    )
    assert settings.app_type == "UserAssignedMSI"
    assert settings.auth_enabled
    assert settings.host == "0.0.0.0"  # noqa: S104


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=4000\nMEMORY_MAX_MESSAGES=8\n")
    settings = load_settings({"PORT": "5000"}, dotenv)
    assert settings.port == 5000
    assert settings.memory_max_messages == 8


def test_allowed_tenants_are_a_normalised_set() -> None:
    settings = settings_from({"ALLOWED_TENANT_IDS": " A-1 , b-2,, "})
    assert settings.allowed_tenant_ids == frozenset({"a-1", "b-2"})


def test_http_clients_trust_the_environment_only_when_a_proxy_is_set() -> None:
    assert not settings_from({}).proxy_configured
    assert not settings_from({"NO_PROXY": "localhost", "HTTPS_PROXY": ""}).proxy_configured
    assert settings_from({"HTTPS_PROXY": "http://proxy.corp:8080"}).proxy_configured
    assert settings_from({"http_proxy": "http://proxy.corp:8080"}).proxy_configured
