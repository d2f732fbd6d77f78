# Shared helpers for the integration tests: free loopback ports, processes
# that are always cleaned up, and JSON assertions on the reports.
set -euo pipefail
BIN=${IL_BIN_DIR:?IL_BIN_DIR must point at the built binaries (run through make test)}
export IOTLAT_PLUGIN_DIR=${IL_PLUGIN_DIR:?IL_PLUGIN_DIR must point at the built plugins}
WORK=$(mktemp -d /tmp/iotlat-it.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start NAME CMD... : run in the background with a time limit; output in $WORK/NAME.{out,err}
start() {
    local name=$1; shift
    timeout 120 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    eval "PID_$name=$!"
}

# wait_for NAME : wait for a started process; fails the test on non-zero exit.
wait_for() {
    local pid_var="PID_$1" rc=0
    wait "${!pid_var}" || rc=$?
    if [ $rc -ne 0 ]; then
        echo "$1 exited with $rc"; cat "$WORK/$1.out" "$WORK/$1.err"; return 1
    fi
}

# check PYTHON-EXPRESSIONS... : each line is asserted with the reports loaded
# as dicts named after their files (pub, sub, tra, ...).
check() {
    python3 - "$WORK" "$@" <<'PY'
import json, os, sys
work = sys.argv[1]
env = {}
for f in os.listdir(work):
    if f.endswith('.json'):
        env[f[:-5]] = json.load(open(os.path.join(work, f)))
bad = 0
for expr in sys.argv[2:]:
    try:
        ok = eval(expr, {}, env)
    except Exception as e:
        ok = False; expr += f'  [{type(e).__name__}: {e}]'
    print(('ok   ' if ok else 'FAIL ') + expr)
    bad += not ok
sys.exit(1 if bad else 0)
PY
}
