#!/usr/bin/env bash
# The official ACP TypeScript SDK (@agentclientprotocol/sdk, pinned in
# tests/acp_client/package-lock.json) that the `ollama-chatd acp` tests use as the client.
source "$(dirname "$0")/common.sh"
command -v npm >/dev/null || apt_install nodejs npm
cd "$ROOT/tests/acp_client"
npm ci --no-audit --no-fund --loglevel=error
publish "$ROOT/tests/acp_client" acp-client
say "ACP client: $(node -p 'require("./node_modules/@agentclientprotocol/sdk/package.json").version')"
