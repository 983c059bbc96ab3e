#!/usr/bin/env bash
#
# install-deps.sh - installs the Debian 12 packages Roomcast is built,
# run and tested with, and only those that are missing.
#
# Used by `make deps` (and so by make run, make test and .ci/run). Quiet
# and quick when everything is there: it asks dpkg first and runs
# apt-get (update, then install) only for what is missing. Not for other
# distributions; there, install the equivalents of PACKAGES by hand.
#
# Usage: deploy/install-deps.sh
# Needs: root when something is missing.
#
# Installing postgresql-15 on Debian creates and starts a system cluster
# on port 5432 ("main"). It is left alone, running or not: the
# development stack (deploy/devstack.sh) runs its own cluster with no TCP
# and its socket in state/run, so the two never meet.

set -eu

PACKAGES=(
    build-essential     # cc, make, ar
    pkg-config
    libfcgi-dev
    libpq-dev
    libjansson-dev
    libssl-dev
    postgresql-15       # the development stack's server
    postgresql-client-15
    lighttpd
    spawn-fcgi
    curl                # the stack's readiness check
    python3             # integration tests
    perl                # prove runs every test
)

is_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) ||
        return 1
    [ "${status:0:2}" = ii ]
}

main() {
    local missing=() package
    command -v dpkg-query >/dev/null || {
        echo "install-deps: not a Debian system; install by hand:" \
            "${PACKAGES[*]}" >&2
        exit 1
    }
    for package in "${PACKAGES[@]}"; do
        is_installed "$package" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    echo "install-deps: installing ${missing[*]}"
    [ "$(id -u)" = 0 ] || {
        echo "install-deps: run as root, or: sudo apt-get install" \
            "${missing[*]}" >&2
        exit 1
    }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -q -y --no-install-recommends "${missing[@]}"
}

main "$@"
