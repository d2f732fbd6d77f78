# ZeroMQ has no broker: the publisher binds, the others connect.  For the
# conformance suite the transformer stands in for the broker: case 4 kills
# and restarts it between publisher and subscriber, and case 3 ("broker down
# at start") becomes an endpoint that cannot be bound.
#
# Contract for servers/<driver>.sh (sourced after lib.sh):
#   srv_start / srv_stop / srv_kill / srv_restart  broker lifecycle
#   pub_env, tra_env, sub_env {direct|hop}, down_env   KEY=VALUE words per role
#   DOWN_EXPECT    text the "broker down" error must contain
#   SUB_SETTLE     seconds to let subscriptions settle before publishing
#   OUTAGE_PATH    direct|hop: how case 4's subscriber reads
#   OUTAGE_SUFFIX  topic suffix case 4's subscriber reads
#   DOWN_BIN       binary run against down_env (default iotlat-subscriber)
#   srv_prepare_outage   optional hook run before case 4, once T is set
ZP1=$(free_port); ZP2=$(free_port)
DOWN_EXPECT="cannot bind"
DOWN_BIN=iotlat-publisher
OUTAGE_PATH=hop
OUTAGE_SUFFIX=.out
ZTRA_PID=

pub_env() { echo "IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:$ZP1"; }
tra_env() { echo "IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$ZP1 IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:$ZP2"; }
sub_env() {
    if [ "$1" = hop ]; then echo "IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$ZP2"
    else echo "IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$ZP1"; fi
}
# Binding an endpoint with an unresolvable interface fails at once.
down_env() { echo "IOTLAT_ZEROMQ_BIND=tcp://no-such-interface.invalid:$ZP1 IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$ZP1"; }

# The "broker" is a forwarding transformer, for the outage case only.
srv_start() { :; }
srv_prepare_outage() { srv_run_tra; }
srv_run_tra() {
    # No `timeout` wrapper: srv_kill must SIGKILL the transformer itself;
    # IOTLAT_DURATION bounds its life.
    env $(tra_env) IOTLAT_IN_TOPIC="$T" IOTLAT_OUT_TOPIC="$T.out" \
        IOTLAT_DURATION=60s IOTLAT_WAIT_READY=0 "$BIN/iotlat-transformer" \
        >>"$WORK/ztra.out" 2>>"$WORK/ztra.err" &
    ZTRA_PID=$!
    PIDS+=($ZTRA_PID)
}
srv_kill() {
    if [ -n "$ZTRA_PID" ]; then kill -9 "$ZTRA_PID" 2>/dev/null || true; wait "$ZTRA_PID" 2>/dev/null || true; fi
    ZTRA_PID=
}
srv_restart() { srv_run_tra; }
srv_stop() {
    if [ -n "$ZTRA_PID" ]; then kill "$ZTRA_PID" 2>/dev/null || true; fi
    ZTRA_PID=
}
