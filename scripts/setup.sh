#!/usr/bin/env bash
# Install tkhub from this checkout, then start it or test it.
#
#   bash scripts/setup.sh up   [tkhub up options]   install, then start the hub
#   bash scripts/setup.sh test [pytest options]     install test dependencies, run the suite
#
# Installs: a project virtualenv (.venv) from the system Python, tkhub into it,
# and the JupyterHub proxy (configurable-http-proxy) into node_modules/.
# "test" also installs, as root, the Debian packages the suite starts for real:
# PostgreSQL, an OCI registry, buildah/skopeo and Chromium; and builds the test
# cluster's Kubernetes programs from their pinned Go modules (cached).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
mode=${1:-}
[ $# -gt 0 ] && shift

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $* (or install it yourself and run again)"
  fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "Installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
}

# Servers run as per-user system accounts, which must be able to execute the
# environment's interpreter: build the venv from the system Python (/usr/bin),
# never from a per-user build (pyenv under a private home).
system_python() {
  if [ -n "${TKHUB_PYTHON:-}" ]; then echo "$TKHUB_PYTHON"
  elif [ -x /usr/bin/python3 ]; then echo /usr/bin/python3
  else command -v python3 || die "no python3 found: install Python >= 3.11"
  fi
}

ensure_venv() {
  local py
  py=$(system_python)
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$py is older than Python 3.11"
  if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
  if [ ! -x .venv/bin/python ]; then
    say "Creating the virtualenv .venv from $py"
    "$py" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  say "Installing tkhub${1:+ with [$1]} into .venv"
  .venv/bin/python -m pip install -q -e ".${1:+[$1]}"
}

ensure_proxy() {
  command -v npm >/dev/null || die "npm not found: install Node.js and npm (apt-get install nodejs npm)"
  if [ ! -x node_modules/.bin/configurable-http-proxy ]; then
    say "Installing the JupyterHub proxy (configurable-http-proxy) into node_modules"
    npm install --no-audit --no-fund --silent
  fi
}

# The cluster tests run a real Kubernetes control plane built from pinned Go
# modules (cluster/build.sh): the first build takes minutes, later runs reuse it.
ensure_cluster_programs() {
  command -v go >/dev/null || [ -x /usr/local/go/bin/go ] \
    || die "Go is not installed: the cluster tests build Kubernetes from Go modules; install Go >= 1.24 (apt-get install golang-go, or from go.dev)"
  command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
  apt_install openssl
  say "Building (or reusing) the test cluster's programs: etcd, Kubernetes, kwok, Kueue"
  bash cluster/build.sh >/dev/null
}

case "$mode" in
  up)
    ensure_venv ""
    ensure_proxy
    exec .venv/bin/tkhub up "$@"
    ;;
  test)
    apt_install postgresql docker-registry buildah skopeo chromium apache2-utils mmdebstrap
    ensure_venv test
    ensure_proxy
    ensure_cluster_programs
    say "Running the test suite"
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    die "usage: bash scripts/setup.sh up|test [options]"
    ;;
esac
