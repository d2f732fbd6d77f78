# MQTT: a real Mosquitto 2.0 (Debian's) on a free loopback port, with its
# config in $WORK.  Case 4 kills it with SIGKILL and starts it again on the
# same port, so the clients must notice the loss, reconnect and resubscribe.
# See servers/zeromq.sh for the contract of this file.
command -v mosquitto >/dev/null || { echo "mosquitto is not installed (Debian package mosquitto)"; exit 1; }
MQ_PORT=$(free_port)
MQ_DOWN_PORT=$(free_port)
MQ_PID=
DOWN_EXPECT="cannot connect to 127.0.0.1:$MQ_DOWN_PORT: Connection refused"
SUB_SETTLE=1

cat >"$WORK/mosquitto.conf" <<CONF
listener $MQ_PORT 127.0.0.1
allow_anonymous true
persistence false
# Running as root, Mosquitto would switch to the mosquitto user and lose
# access to $WORK.
user root
log_dest file $WORK/mosquitto.log
CONF

pub_env() { echo "IOTLAT_MQTT_URL=tcp://127.0.0.1:$MQ_PORT"; }
tra_env() { pub_env; }
sub_env() { pub_env; }
down_env() { echo "IOTLAT_MQTT_URL=tcp://127.0.0.1:$MQ_DOWN_PORT"; }

# mq_wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
mq_wait_port() {
    python3 - "$1" <<'PY'
import socket, sys, time
end = time.time() + 10
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
print("mosquitto did not start listening on port", sys.argv[1]); sys.exit(1)
PY
}

srv_start() {
    mosquitto -c "$WORK/mosquitto.conf" >>"$WORK/mosquitto.out" 2>&1 &
    MQ_PID=$!
    PIDS+=($MQ_PID)
    mq_wait_port "$MQ_PORT" || { cat "$WORK/mosquitto.out" "$WORK/mosquitto.log" 2>/dev/null; return 1; }
}
srv_kill() { [ -n "$MQ_PID" ] && kill -9 "$MQ_PID" 2>/dev/null; wait "$MQ_PID" 2>/dev/null || true; MQ_PID=; }
srv_restart() { srv_start; }
srv_stop() {
    [ -n "$MQ_PID" ] && kill "$MQ_PID" 2>/dev/null && wait "$MQ_PID" 2>/dev/null
    MQ_PID=
    true
}
