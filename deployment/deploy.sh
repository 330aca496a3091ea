#!/usr/bin/env bash
# Puts MemoryBot in Azure with one command: the infrastructure (deployment/main.bicep), the code
# (zip deploy; App Service installs requirements.txt itself), and the Teams app package for the
# new bot. Safe to run again: it updates what is there.
#
#   bash deployment/deploy.sh <resource-group> <name-prefix> [location]
#
# Needs the Azure CLI (signed in, with Bicep), zip, and Python 3.11+ with the runtime requirements
# (set PYTHON to choose one). Walk-through, costs and tear-down: deployment/README.md.
set -euo pipefail

usage() {
    printf '%s\n' \
        "Usage: bash deployment/deploy.sh <resource-group> <name-prefix> [location]" \
        "  resource-group  where everything goes; created in <location> if it does not exist" \
        "  name-prefix     3-16 lowercase letters, digits or hyphens, starting with a letter" \
        "  location        an Azure region such as swedencentral (default: the group's region)" >&2
}

fail() {
    printf 'deploy.sh: %s\n' "$*" >&2
    exit 1
}

step() {
    printf '\n==> %s\n' "$*"
}

if [[ $# -lt 2 || $# -gt 3 ]]; then
    usage
    exit 2
fi
resource_group=$1
prefix=$2
location=${3:-}
python=${PYTHON:-python3}

if [[ ! $prefix =~ ^[a-z][a-z0-9-]{1,14}[a-z0-9]$ ]]; then
    fail "name prefix '$prefix' must be 3-16 lowercase letters, digits or hyphens, start with a" \
        "letter and end with a letter or digit (for example: memorybot)"
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step "Checking prerequisites"
command -v az >/dev/null 2>&1 ||
    fail "the Azure CLI (az) is not installed: see https://aka.ms/install-azure-cli"
az account show --output none >/dev/null 2>&1 ||
    fail "the Azure CLI is not signed in: run 'az login' (and 'az account set --subscription <id>')"
az bicep version >/dev/null 2>&1 ||
    fail "Bicep is not available to the Azure CLI: run 'az bicep install'"
command -v zip >/dev/null 2>&1 ||
    fail "zip is not installed: install it (for example 'sudo apt-get install zip')"
command -v "$python" >/dev/null 2>&1 ||
    fail "Python ('$python') is not installed: install Python 3.11+ or set PYTHON=/path/to/python"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 ||
    fail "'$python' is older than Python 3.11: set PYTHON=/path/to/python3.11"
[[ -f scripts/build_app_package.py ]] ||
    fail "scripts/build_app_package.py is missing: it builds the Teams app package"
"$python" scripts/build_app_package.py --help >/dev/null 2>&1 ||
    fail "'$python scripts/build_app_package.py' does not run: install the requirements" \
        "('bash scripts/run.sh' makes .venv) and set PYTHON=.venv/bin/python"
subscription=$(az account show --query '[name, id]' --output tsv)
printf 'Subscription: %s\n' "${subscription//$'\n'/ }"

if az group show --name "$resource_group" --output none >/dev/null 2>&1; then
    group_location=$(az group show --name "$resource_group" --query location --output tsv)
    location=${location:-$group_location}
else
    [[ -n $location ]] ||
        fail "resource group '$resource_group' does not exist: give a location to create it in" \
            "(bash deployment/deploy.sh $resource_group $prefix swedencentral)"
    step "Creating resource group $resource_group in $location"
    az group create --name "$resource_group" --location "$location" \
        --tags application=memorybot --output none
fi

deployment_name="memorybot-$(date +%Y%m%d-%H%M%S)"
step "Deploying the infrastructure to $resource_group ($location) as $deployment_name" \
    "(10 minutes or so the first time)"
az deployment group create \
    --resource-group "$resource_group" \
    --name "$deployment_name" \
    --template-file deployment/main.bicep \
    --parameters @deployment/main.parameters.json \
    --parameters namePrefix="$prefix" location="$location" \
    --output none

output() {
    az deployment group show --resource-group "$resource_group" --name "$deployment_name" \
        --query "properties.outputs.$1.value" --output tsv
}
BOT_ID=$(output botAppId)
web_app=$(output webAppName)
host_name=$(output webAppHostName)
openai_account=$(output openAiAccountName)
openai_location=$(output openAiLocation)
[[ -n $BOT_ID && -n $web_app && -n $host_name ]] ||
    fail "deployment $deployment_name finished without the bot id, web app name or host name"

step "Packaging the code"
work_dir=$(mktemp -d)
trap 'rm -rf "$work_dir"' EXIT
# Only what the bot runs: no local settings (.env may hold keys), data, tests or tooling, and
# none of the Agents Toolkit's files (env/*.user and .localConfigs hold secrets). .webappignore
# lists the same for the Toolkit's own deploy.
zip -r -q "$work_dir/app.zip" . \
    -x '.git/*' '.venv/*' '.venv-*' 'node_modules/*' 'tests/*' 'data/*' \
    '.env' '.env.*' '*__pycache__*' '*.pyc' '.mypy_cache/*' '.pytest_cache/*' \
    '.ruff_cache/*' '.hypothesis/*' '.ci/*' 'bench/*' 'deployment/*' 'docs/*' \
    'package.json' 'package-lock.json' 'appPackage.zip' \
    'env/*' '.localConfigs*' '.vscode/*' 'appPackage/*' 'devTools/*' '.deployment/*' \
    'm365agents*.yml' '.webappignore'

step "Deploying the code to $web_app (App Service installs requirements.txt; a few minutes)"
az webapp deploy --resource-group "$resource_group" --name "$web_app" \
    --src-path "$work_dir/app.zip" --type zip --output none

healthy=no
if command -v curl >/dev/null 2>&1; then
    step "Waiting for https://$host_name/healthz"
    for ((attempt = 1; attempt <= 30; attempt++)); do
        if curl --silent --fail --max-time 10 --output /dev/null "https://$host_name/healthz"; then
            healthy=yes
            break
        fi
        sleep 10
    done
fi

step "Building the Teams app package for bot $BOT_ID"
"${PYTHON:-python3}" scripts/build_app_package.py --bot-id "$BOT_ID" --output appPackage.zip

if [[ $healthy == yes ]]; then
    status="running"
else
    status="deployed, but /healthz did not answer yet (first start can take a few minutes)"
fi
cat <<EOF

MemoryBot is $status.
  Messaging endpoint:      https://$host_name/api/messages
  Bot id (MicrosoftAppId): $BOT_ID
  Resource group:          $resource_group ($location)

Next:
  1. In Teams: Apps > Manage your apps > Upload an app > Upload a custom app, and choose
     ${PWD}/appPackage.zip
     (or have a Teams administrator upload it in the Teams admin center).
  2. Open MemoryBot in Teams and say hello.

  Logs:       az webapp log tail --resource-group $resource_group --name $web_app
  Redeploy:   bash deployment/deploy.sh $resource_group $prefix
  Tear down:  az group delete --name $resource_group
              then az cognitiveservices account purge --resource-group $resource_group \\
                --location $openai_location --name $openai_account
              (deleted Azure OpenAI accounts are kept 48 hours and hold their name until purged)
EOF
