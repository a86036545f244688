#!/usr/bin/env bash
# The Debian packages the tests start, installed where missing (`make test` runs this first):
# redis-server (Redis publishing), chromium (the rendered report), openjdk-17-jre-headless
# (java, for the Spark engine), nodejs and npm (dynalite, the DynamoDB-compatible server).
# Each is checked by the program it brings (the same pairs as tests/python/programs.py).
# apt-get runs only when one is missing; where it cannot (not root, or no apt-get) this
# names the missing packages and the command, and exits non-zero before any test starts.
set -euo pipefail

missing_packages() {
    command -v redis-server >/dev/null || echo redis-server
    command -v chromium >/dev/null || echo chromium
    command -v java >/dev/null || echo openjdk-17-jre-headless
    command -v node >/dev/null || echo nodejs
    command -v npm >/dev/null || echo npm
}

refuse() {  # $1: why, $2...: the packages
    local why=$1 names
    shift
    names=$(printf '%s, ' "$@")
    echo "make test needs ${names%, }${why}: install them with" \
        "\`sudo apt-get install $*\`, then run make test again." >&2
    exit 1
}

mapfile -t missing < <(missing_packages)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    refuse " (not root, so it cannot install them)" "${missing[@]}"
fi
if ! command -v apt-get >/dev/null; then
    refuse " (Debian packages; this machine has no apt-get)" "${missing[@]}"
fi
echo "Installing ${missing[*]} with apt-get"
if ! apt-get update -qq ||
    ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
    refuse " (apt-get failed, see above)" "${missing[@]}"
fi
mapfile -t missing < <(missing_packages)
if [ ${#missing[@]} -gt 0 ]; then
    echo "apt-get installed ${missing[*]}, yet their programs (redis-server, chromium, java," \
        "node, npm) are still not all on PATH: fix PATH, then run make test again." >&2
    exit 1
fi
