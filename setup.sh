#!/bin/sh
# The newcomer's way in on a fresh Debian or Ubuntu machine:
#   ./setup.sh run    set up a virtual environment, install lanspread and start it
#   ./setup.sh test   install everything the tests need and run the whole suite
# It installs make through apt-get when the machine has none, then hands over to
# the Makefile, which checks Python (3.11 or newer, with venv) and installs the rest.
# Extra arguments go to make as they are: ./setup.sh run ARGS=demo
set -eu
cd "$(dirname "$0")"

if ! command -v make >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "lanspread's setup needs 'make'; install it with your system's package manager." >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing Debian packages: make"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq make
fi

if [ "$#" -eq 0 ]; then
    echo "usage: ./setup.sh run|test [make arguments]" >&2
    exit 2
fi
exec make "$@"
