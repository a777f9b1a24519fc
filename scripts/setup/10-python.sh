#!/usr/bin/env bash
# The daemon and its test tools in .venv (editable install).
source "$(dirname "$0")/common.sh"
cd "$ROOT"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
