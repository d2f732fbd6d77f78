#!/bin/sh
# iotlat-entrypoint - the container image's entrypoint: one image holds every
# iotlat binary, and this script picks the one a container runs.
#
# The role comes from the first argument (publisher, transformer,
# subscriber, plotter, or the same with the iotlat- prefix) or, without
# one, from IOTLAT_ROLE; the remaining arguments are passed to the binary as
# flags.  Without any role, an argument list is run as a command of its own
# (`docker run iotlat:latest sh`), and no arguments at all print the usage.
#
# IOTLAT_ROLE is removed from the environment before the binary starts: the
# binaries refuse IOTLAT_* variables they do not know, so that a typo never
# runs the wrong test, and the role is not one of their options.
#
# The binaries are found on PATH (/usr/local/bin in the image); the local
# stack runner (tests/deploy/swarm_local.py) puts the build's bin/ first on
# PATH and runs services through this same script.
set -eu

usage() {
    cat <<'EOF'
usage: iotlat-entrypoint [publisher|transformer|subscriber|plotter] [--option value]...
       IOTLAT_ROLE=publisher|transformer|subscriber|plotter iotlat-entrypoint [--option value]...
       iotlat-entrypoint COMMAND [ARG]...      (no role: run COMMAND, e.g. sh)
Every option is also an IOTLAT_* environment variable; `iotlat-entrypoint ROLE --help`
lists those of a role.
EOF
}

role=${IOTLAT_ROLE:-}
case "${1:-}" in
publisher | transformer | subscriber | plotter)
    role=$1
    shift
    ;;
iotlat-publisher | iotlat-transformer | iotlat-subscriber | iotlat-plotter)
    role=${1#iotlat-}
    shift
    ;;
esac
unset IOTLAT_ROLE

if [ -z "$role" ]; then
    case "${1:-}" in
    "" | -h | --help)
        usage
        [ $# -gt 0 ] && exit 0
        exit 2
        ;;
    -*)
        echo "iotlat-entrypoint: error: options given but no role: set IOTLAT_ROLE or give the role first" >&2
        usage >&2
        exit 2
        ;;
    esac
    exec "$@"
fi

case "$role" in
publisher | transformer | subscriber | plotter) ;;
*)
    echo "iotlat-entrypoint: error: IOTLAT_ROLE='$role' is invalid: expected publisher, transformer, subscriber or plotter" >&2
    exit 2
    ;;
esac
if ! command -v "iotlat-$role" >/dev/null 2>&1; then
    echo "iotlat-entrypoint: error: iotlat-$role is not installed (PATH=$PATH)" >&2
    exit 127
fi
exec "iotlat-$role" "$@"
