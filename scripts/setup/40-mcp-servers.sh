#!/usr/bin/env bash
# Real MCP servers that nobody here wrote, for the MCP host tests: npm's
# @modelcontextprotocol/server-everything (stdio and streamable HTTP; has slow and
# annotated tools) and PyPI's mcp-server-time in a venv of its own (its
# dependencies cannot clash with ours). Pinned, cached in $CACHE by version.
source "$(dirname "$0")/common.sh"
EVERYTHING_VERSION=2026.8.31
TIME_VERSION=2026.10.19
command -v npm >/dev/null || apt_install nodejs npm  # NodeSource's nodejs ships npm itself
apt_install python3-venv

everything="$CACHE/mcp-server-everything-$EVERYTHING_VERSION"
if [ ! -f "$everything/.complete" ]; then
  say "installing @modelcontextprotocol/server-everything $EVERYTHING_VERSION"
  rm -rf "$everything" && mkdir -p "$everything"
  npm install --prefix "$everything" --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" >/dev/null
  touch "$everything/.complete"
fi

time_server="$CACHE/mcp-server-time-$TIME_VERSION"
if [ ! -f "$time_server/.complete" ]; then
  say "installing mcp-server-time $TIME_VERSION in its own venv"
  rm -rf "$time_server"  # a venv cannot be moved, so it is built in place
  python3 -m venv "$time_server"
  "$time_server/bin/python" -m pip install --quiet --disable-pip-version-check "mcp-server-time==$TIME_VERSION"
  touch "$time_server/.complete"
fi

publish "$everything/node_modules/.bin/mcp-server-everything" mcp-server-everything
publish "$time_server/bin/mcp-server-time" mcp-server-time
