#!/usr/bin/env bash
# Starts MemoryBot and the Microsoft 365 Agents Playground beside it, to talk to the bot in a
# Teams-like page: personal chat, group chat and channel. Ctrl-C stops both.
# Creates .venv with the runtime dependencies (as run.sh does) and installs the npm packages
# pinned in package-lock.json when the Playground there is missing or not the pinned version.
# PORT (the bot, default 3978) and PLAYGROUND_PORT (the page, default 56150) choose the ports;
# arguments are passed on to `agentsplayground`. Details: docs/playground.md
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements.txt

package=@microsoft/m365agentsplayground
pinned=$(node -p "require('./package.json').devDependencies['$package']")
installed=$(node -p "try { require('./node_modules/$package/package.json').version } catch { '' }")
if [ "$installed" != "$pinned" ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi

export PORT=${PORT:-3978}
playground_port=${PLAYGROUND_PORT:-56150}
endpoint="http://127.0.0.1:$PORT/api/messages"
mkdir -p data

.venv/bin/python app.py &
bot=$!
trap 'kill "$bot" 2>/dev/null || true; wait "$bot" 2>/dev/null || true' EXIT
# Wait until the bot serves: the Playground greets it as soon as the page opens.
for _ in $(seq 600); do
    kill -0 "$bot" 2>/dev/null || { wait "$bot"; exit $?; }
    .venv/bin/python -c "import urllib.request as r; r.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" \
        2>/dev/null && break
    sleep 0.1
done

echo "MemoryBot: $endpoint"
echo "Agents Playground: open http://localhost:$playground_port (if that port is taken, it says which one it took)"
# It opens the page in a browser unless TEAMSAPPTESTER_BROWSER=none; its log goes to data/.
M365_AGENTS_PLAYGROUND_LOGFILE=${M365_AGENTS_PLAYGROUND_LOGFILE:-data/playground.log} \
    node_modules/.bin/agentsplayground -e "$endpoint" -c msteams -p "$playground_port" \
    --disable-telemetry "$@"
