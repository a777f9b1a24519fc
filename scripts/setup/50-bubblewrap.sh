#!/usr/bin/env bash
# bubblewrap (`bwrap`), Debian's package, for the tests of run_command's optional sandbox
# (commandSandbox: read-only file system but the workspace and a temporary folder, no network).
source "$(dirname "$0")/common.sh"
command -v bwrap >/dev/null || apt_install bubblewrap
publish "$(command -v bwrap)" bwrap
