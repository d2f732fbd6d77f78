# The broker side of the conformance suite for the NATS driver: Debian's
# nats-server on a free loopback port, killed with SIGKILL and started again
# on the same port for the outage case.  See servers/zeromq.sh for the
# contract of this file.
#
# NATS_CONF_JETSTREAM=1 runs the same suite through JetStream: the server
# gets -js with its store in $WORK (kept across the restart, as a real
# deployment keeps its disk), and every role sets IOTLAT_NATS_JETSTREAM=true.
command -v nats-server >/dev/null || { echo "nats-server is not installed (apt-get install nats-server)"; exit 1; }
NP=$(free_port)
DP=$(free_port)
NATS_PID=
NATS_JS_ENV=
NATS_JS_ARGS=()
if [ "${NATS_CONF_JETSTREAM:-0}" = 1 ]; then
    NATS_JS_ENV="IOTLAT_NATS_JETSTREAM=true"
    NATS_JS_ARGS=(-js -sd "$WORK/js")
fi
DOWN_EXPECT="cannot connect to nats://127.0.0.1:$DP: Connection refused"

nats_env() { echo "IOTLAT_NATS_URL=nats://127.0.0.1:$NP IOTLAT_NATS_RECONNECT_WAIT=100 $NATS_JS_ENV"; }
pub_env() { nats_env; }
tra_env() { nats_env; }
sub_env() { nats_env; }
down_env() { echo "IOTLAT_NATS_URL=nats://127.0.0.1:$DP $NATS_JS_ENV"; }

# Start nats-server and wait (at most 10 s) until it accepts connections.
srv_start() {
    nats-server -a 127.0.0.1 -p "$NP" "${NATS_JS_ARGS[@]}" >>"$WORK/nats-server.log" 2>&1 &
    NATS_PID=$!
    PIDS+=($NATS_PID)
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$NP") 2>/dev/null; then return 0; fi
        kill -0 "$NATS_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "nats-server did not start on 127.0.0.1:$NP"; tail -n 20 "$WORK/nats-server.log"; exit 1
}
srv_kill() { [ -n "$NATS_PID" ] && kill -9 "$NATS_PID" 2>/dev/null; wait "$NATS_PID" 2>/dev/null || true; NATS_PID=; }
srv_restart() { srv_start; }
srv_stop() {
    if [ -n "$NATS_PID" ]; then
        kill "$NATS_PID" 2>/dev/null || true
        # nats-server exits at once on SIGTERM; bound the wait anyway.
        for _ in $(seq 50); do kill -0 "$NATS_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$NATS_PID" 2>/dev/null || true
        wait "$NATS_PID" 2>/dev/null || true
    fi
    NATS_PID=
    true
}
