# Shared helpers for the integration tests: free loopback ports, processes
# that are always cleaned up, and JSON assertions on the reports.
set -euo pipefail
BIN=${IL_BIN_DIR:?IL_BIN_DIR must point at the built binaries (run through make test)}
export IOTLAT_PLUGIN_DIR=${IL_PLUGIN_DIR:?IL_PLUGIN_DIR must point at the built plugins}
WORK=$(mktemp -d /tmp/iotlat-it.XXXXXX)
PIDS=()

cleanup() {
    local rc=$?
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # Keep the evidence of a failure; a passing test leaves nothing behind.
    if [ $rc -eq 0 ]; then rm -rf "$WORK"; else echo "test files kept in $WORK"; fi
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
# Each report is a variable named after its file (pub, sub, ...); R holds
# them all, and reports('sub') lists those whose name starts with 'sub'
# (comprehensions cannot see eval's locals, so use these there).
R = {}
for f in sorted(os.listdir(work)):
    if f.endswith('.json'):
        R[f[:-5]] = json.load(open(os.path.join(work, f)))
env = dict(R)
env['R'] = R
env['reports'] = lambda *prefixes: [v for k, v in R.items() if k.startswith(prefixes)]
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

# start_redis: a redis-server on a free loopback port, data in $WORK;
# sets REDIS_PORT and REDIS_PID.
start_redis() {
    command -v redis-server >/dev/null || { echo "redis-server is not installed (make deps)"; return 1; }
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WORK" --daemonize no >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=($REDIS_PID)
    for _ in $(seq 100); do
        redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    echo "redis-server did not start"; cat "$WORK/redis.log"; return 1
}

# kill9 NAME: SIGKILL a started process itself (not only its `timeout`
# wrapper, which would leave the child running).
kill9() {
    local pid_var="PID_$1"
    pkill -9 -P "${!pid_var}" 2>/dev/null || true
    kill -9 "${!pid_var}" 2>/dev/null || true
    wait "${!pid_var}" 2>/dev/null || true
}
