# Redis for the conformance suite: Debian's redis-server on a free loopback
# port, without persistence (a kill -9 loses everything, as a crashed broker
# would), data directory and log in $WORK.  Case 4 kills it with SIGKILL and
# starts it again on the same port.  Pub/sub mode: the driver's default.
#
# Contract: see the comment at the top of servers/zeromq.sh.
command -v redis-server >/dev/null || { echo "redis-server is not installed (Debian package redis-server)"; exit 1; }
RPORT=$(free_port)
RDOWN=$(free_port)
RPID=
DOWN_EXPECT="cannot connect to 127.0.0.1:$RDOWN"

# Extra options for every role (the streams tests reuse this file).
REDIS_EXTRA_ENV=${REDIS_EXTRA_ENV:-}
redis_env() { echo "IOTLAT_REDIS_HOST=127.0.0.1 IOTLAT_REDIS_PORT=$RPORT $REDIS_EXTRA_ENV"; }
pub_env() { redis_env; }
tra_env() { redis_env; }
sub_env() { redis_env; }
down_env() { echo "IOTLAT_REDIS_HOST=127.0.0.1 IOTLAT_REDIS_PORT=$RDOWN"; }

# srv_start [extra redis-server arguments...]: start and wait (bounded) until
# it answers PING.
REDIS_ARGS=()
srv_start() {
    [ $# -gt 0 ] && REDIS_ARGS=("$@")
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WORK" --logfile "$WORK/redis-broker.log" --daemonize no "${REDIS_ARGS[@]}" &
    RPID=$!
    PIDS+=($RPID)
    local i
    for i in $(seq 1 100); do
        if redis-cli -p "$RPORT" --no-auth-warning ${REDIS_CLI_AUTH:-} ping 2>/dev/null |
            grep -qE 'PONG|NOAUTH'; then
            return 0
        fi
        kill -0 "$RPID" 2>/dev/null || break
        sleep 0.05
    done
    echo "redis-server did not start on port $RPORT"; cat "$WORK/redis-broker.log" 2>/dev/null
    return 1
}
srv_kill() { [ -n "$RPID" ] && kill -9 "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null || true; RPID=; }
srv_restart() { srv_start; }
srv_stop() {
    [ -n "$RPID" ] || return 0
    kill "$RPID" 2>/dev/null
    local i
    for i in $(seq 1 100); do kill -0 "$RPID" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$RPID" 2>/dev/null || true
    wait "$RPID" 2>/dev/null || true
    RPID=
}
