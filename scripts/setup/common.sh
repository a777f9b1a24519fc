# Sourced by each setup script: where heavy builds are cached (keyed by version, kept
# across runs) and where the tests find them (`.real-parts/` in the checkout, symlinks).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${OLLAMA_CHATD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ollama-chatd}"
PARTS="$ROOT/.real-parts"
mkdir -p "$CACHE" "$PARTS"

# apt packages, installed only when missing (apt-get update once per run at most).
apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ ! -f /tmp/.ollama-chatd-apt-updated ]; then
    apt-get update -qq && touch /tmp/.ollama-chatd-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Link a cached thing into .real-parts/ under a stable name the tests know.
publish() { ln -sfn "$1" "$PARTS/$2"; }

say() { echo "setup: $*" >&2; }
