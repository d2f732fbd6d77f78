#!/usr/bin/env bash
# The MQTT driver against RabbitMQ's MQTT plugin (Debian's rabbitmq-server
# 3.10, MQTT 3.1.1): a private node on free loopback ports, with its own
# epmd, Erlang cookie, data, logs, config and enabled-plugins file in $WORK,
# stopped with rabbitmqctl (and killed if that fails).
#
#  1. pub -> sub over MQTT 3.1.1, QoS 1, as guest/guest (RabbitMQ allows
#     guest from loopback only, which is where we are): all received;
#  2. 20 per-device connections up front, QoS 0: all received;
#  3. a wrong password: a clear error naming the URL and the user.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
RMQ_BIN=/usr/lib/rabbitmq/bin
[ -x $RMQ_BIN/rabbitmq-server ] || { echo "rabbitmq-server is not installed (Debian package rabbitmq-server)"; exit 1; }
command -v epmd >/dev/null || { echo "epmd is not installed (Debian package erlang-base)"; exit 1; }
export IOTLAT_DRIVER=mqtt IOTLAT_PROGRESS=0 IOTLAT_LOG_LEVEL=info

AMQP=$(free_port) MQTT=$(free_port) DIST=$(free_port) EPMD=$(free_port)
R=$WORK/rabbitmq
mkdir -p "$R"
echo "[rabbitmq_mqtt]." >"$R/enabled_plugins"
cat >"$R/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$AMQP
mqtt.listeners.tcp.default = 127.0.0.1:$MQTT
mqtt.allow_anonymous = false
loopback_users.guest = true
log.console = false
log.file.level = info
CONF
: >"$R/rabbitmq-env.conf"
# Everything the node and rabbitmqctl need, none of it shared with a system
# RabbitMQ or another test: HOME holds the Erlang cookie.
export HOME=$R RABBITMQ_CONF_ENV_FILE=$R/rabbitmq-env.conf \
    RABBITMQ_NODENAME=iotlat-$AMQP@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$AMQP RABBITMQ_DIST_PORT=$DIST ERL_EPMD_PORT=$EPMD \
    ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_MNESIA_BASE=$R/mnesia RABBITMQ_LOG_BASE=$R/log \
    RABBITMQ_ENABLED_PLUGINS_FILE=$R/enabled_plugins RABBITMQ_CONFIG_FILE=$R/rabbitmq \
    RABBITMQ_ADVANCED_CONFIG_FILE=$R/advanced.config RABBITMQ_PID_FILE=$R/pid \
    RABBITMQ_GENERATED_CONFIG_DIR=$R/config RABBITMQ_SCHEMA_DIR=$R/schema \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
RMQ_PID=
rmq_stop() {
    [ -n "$RMQ_PID" ] || return 0
    timeout 30 $RMQ_BIN/rabbitmqctl stop >"$R/stop.out" 2>&1 || cat "$R/stop.out"
    # The node halts a moment after rabbitmqctl returns; still there after
    # 20 s (or stop failed): kill it.
    for _ in $(seq 80); do kill -0 "$RMQ_PID" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$RMQ_PID" 2>/dev/null; then
        echo "rabbitmqctl stop did not stop the node: killing it"
        pkill -9 -P "$RMQ_PID" 2>/dev/null || true
        kill -9 "$RMQ_PID" 2>/dev/null || true
    fi
    wait "$RMQ_PID" 2>/dev/null || true
    RMQ_PID=
    epmd -kill >/dev/null 2>&1 || true
}
trap 'rmq_stop; cleanup' EXIT

echo "== starting RabbitMQ (MQTT on 127.0.0.1:$MQTT, node iotlat-$AMQP@localhost)"
t0=$SECONDS
$RMQ_BIN/rabbitmq-server >"$R/server.out" 2>&1 &
RMQ_PID=$!
# Booting takes 5-30 s: wait for the MQTT listener (60 s at most), failing
# early if the node dies.
python3 - $MQTT $RMQ_PID <<'PY' || { tail -n 30 "$R/server.out" "$R"/log/*.log 2>/dev/null; exit 1; }
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
end = time.time() + 60
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close(); sys.exit(0)
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("RabbitMQ exited while starting")
    time.sleep(0.25)
sys.exit("RabbitMQ's MQTT listener did not come up within 60 s")
PY
echo "   up after $((SECONDS - t0)) s"
export IOTLAT_MQTT_URL=tcp://127.0.0.1:$MQTT IOTLAT_MQTT_VERSION=3.1.1
AUTH="IOTLAT_MQTT_USERNAME=guest IOTLAT_MQTT_PASSWORD=guest"

pubsub() { # NAME SENT DEVICES RATE KEY=VALUE...
    local name=$1 sent=$2 devices=$3 rate=$4 T=iotlat/rmq/$RANDOM; shift 4
    echo "== $name"
    rm -f "$WORK"/*.json
    start sub env $AUTH "$@" IOTLAT_TOPIC=$T IOTLAT_DURATION=30s \
        IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
    sleep 1.5
    start pub env $AUTH "$@" IOTLAT_TOPIC=$T IOTLAT_DEVICES=$devices IOTLAT_RATE=$rate \
        IOTLAT_DURATION=2s IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
    wait_for pub; wait_for sub
    grep -h "connected to" "$WORK/pub.err" | sed 's/^/   /'
    check "pub['sent'] == $sent and pub['send_failed'] == 0" \
          "sub['received_unique'] == $sent and sub['lost'] == 0 and sub['malformed'] == 0" \
          "sub['accounting']['balanced'] and sub['devices'] == $devices"
    python3 -c "import json; l=json.load(open('$WORK/sub.json'))['latency_us']; print('   latency p50 %d us, p99 %d us' % (l['p50'], l['p99']))"
}
pubsub "1: pub -> sub, MQTT 3.1.1, QoS 1" 2000 10 100 IOTLAT_MQTT_QOS=1
pubsub "2: 20 per-device connections, QoS 0" 1000 20 25 IOTLAT_MQTT_QOS=0 \
    IOTLAT_MQTT_CONNECTIONS=per-device IOTLAT_MQTT_DEVICES=20

echo "== 3: wrong password"
rc=0
env IOTLAT_MQTT_USERNAME=guest IOTLAT_MQTT_PASSWORD=not-guest IOTLAT_TOPIC=x \
    IOTLAT_DURATION=1s timeout 30 "$BIN/iotlat-subscriber" >"$WORK/bad.out" 2>&1 || rc=$?
sed 's/^/   /' "$WORK/bad.out"
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "FAIL expected a failure exit, got $rc"; exit 1; }
grep -qF "the broker at tcp://127.0.0.1:$MQTT refused the credentials of user 'guest'" \
    "$WORK/bad.out" || { echo "FAIL unclear message"; exit 1; }
echo "ok   exit $rc"

rmq_stop
echo "test_mqtt_rabbitmq: passed"
