#!/usr/bin/env bash
# Benchmarks of the MQTT driver against Debian's Mosquitto on loopback, each
# iotlat throughput figure printed next to a bare Paho MQTT C publish loop
# measured in the same run (the machine is small and shared: the ratio is
# what matters):
#   1. publisher throughput, QoS 0 and 1: iotlat-publisher asked for far more
#      than it can send, against a plain MQTTAsync_sendMessage loop with the
#      same message size (which waits out Paho's full queue instead of
#      counting it as a failure);
#   2. latency at 10 k msg/s (100 devices x 100 msg/s for 5 s), publisher to
#      subscriber, p50/p99: QoS 0, 1 and 2, QoS 1 without TCP_NODELAY (the
#      Nagle tail the driver exists to remove), and QoS 1 with 100 per-device
#      connections.
# Prints the figures; missed expectations never fail the run, a crashed or
# hung process or a missing report does (exit 1).
# Usage: bash tests/bench/driver_mqtt.sh   (after `make`; O=build-dir optional)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
O=${O:-.}
BIN=$ROOT/$O/bin
export IOTLAT_PLUGIN_DIR=$ROOT/$O/plugins IOTLAT_DRIVER=mqtt IOTLAT_PROGRESS=0
command -v mosquitto >/dev/null || { echo "bench: mosquitto is not installed" >&2; exit 1; }
command -v mosquitto_sub >/dev/null || { echo "bench: mosquitto-clients is not installed" >&2; exit 1; }
[ -x "$BIN/iotlat-publisher" ] && [ -f "$IOTLAT_PLUGIN_DIR/mqtt.so" ] ||
    { echo "bench: build first (make)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/iotlat-bench-mqtt.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# The baseline: nothing but Paho calls.  Sends fixed-size messages as fast
# as Paho takes them for a time and prints how many Paho accepted per second
# of that time (what the publisher's achieved_rate measures too), then waits
# until Paho has written (QoS 0) or the broker acknowledged (QoS 1) them.
cat >"$WORK/mqtt_raw.c" <<'C'
#include <MQTTAsync.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static volatile int state; /* 1 connected, 2 failed */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
static void ok(void *c, MQTTAsync_successData *r) { (void)c, (void)r; state = 1; }
static void ko(void *c, MQTTAsync_failureData *r) { (void)c, (void)r; state = 2; }
static int arrived(void *c, char *t, int l, MQTTAsync_message *m)
{
    (void)c, (void)l;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(t);
    return 1;
}
static int pending(MQTTAsync h)
{
    MQTTAsync_token *t = NULL;
    int n = 0;
    if (MQTTAsync_getPendingTokens(h, &t) == MQTTASYNC_SUCCESS && t) {
        while (t[n] != -1)
            n++;
        MQTTAsync_free(t);
    }
    return n;
}
int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: mqtt_raw URL TOPIC BYTES SECONDS QOS\n");
        return 2;
    }
    MQTTAsync h;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.maxBufferedMessages = 100000;
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    o.MQTTVersion = MQTTVERSION_3_1_1;
    o.onSuccess = ok;
    o.onFailure = ko;
    if (MQTTAsync_createWithOptions(&h, argv[1], "iotlat-bench-raw", MQTTCLIENT_PERSISTENCE_NONE,
                                    NULL, &co) != MQTTASYNC_SUCCESS ||
        MQTTAsync_setCallbacks(h, NULL, NULL, arrived, NULL) != MQTTASYNC_SUCCESS ||
        MQTTAsync_connect(h, &o) != MQTTASYNC_SUCCESS)
        return 1;
    for (int i = 0; i < 1000 && !state; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (state != 1) {
        fprintf(stderr, "mqtt_raw: cannot connect to %s\n", argv[1]);
        return 1;
    }
    int len = atoi(argv[3]);
    double secs = atof(argv[4]), t0 = now();
    char *buf = calloc(1, (size_t)len + 1);
    memset(buf, 'x', (size_t)len);
    MQTTAsync_message m = MQTTAsync_message_initializer;
    m.payload = buf;
    m.payloadlen = len;
    m.qos = atoi(argv[5]);
    long n = 0;
    double t1;
    while ((t1 = now()) - t0 < secs) {
        int rc = MQTTAsync_sendMessage(h, argv[2], &m, NULL);
        if (rc == MQTTASYNC_SUCCESS)
            n++;
        else if (rc == MQTTASYNC_MAX_BUFFERED_MESSAGES) {
            /* Sleep, not spin: on two cores a spinning loop would take the
             * CPU Paho's send thread needs to empty the queue. */
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        else
            return 1;
    }
    while (pending(h) > 0 && now() - t0 < secs + 30) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    printf("%.0f\n", (double)n / (t1 - t0));
    MQTTAsync_destroy(&h);
    free(buf);
    return 0;
}
C
cc -O2 -o "$WORK/mqtt_raw" "$WORK/mqtt_raw.c" -lpaho-mqtt3as

P=$(port)
cat >"$WORK/mosquitto.conf" <<CONF
listener $P 127.0.0.1
allow_anonymous true
persistence false
user root
max_queued_messages 1000000
CONF
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.1; done
export IOTLAT_MQTT_URL=tcp://127.0.0.1:$P

# field FILE EXPR : a value from a JSON report (d is the report).
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# run NAME SECONDS CMD... : run with a time limit; a failure fails the bench.
run() {
    local name=$1 limit=$2; shift 2
    if ! timeout "$limit" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
        echo "bench: $name failed"; cat "$WORK/$name.out" "$WORK/$name.err"; exit 1
    fi
}

echo "mqtt driver benchmark ($(mosquitto -h 2>/dev/null | head -n 1), $(nproc) CPUs)"

# The size of one iotlat message as the publisher sends it.
timeout 30 mosquitto_sub -p "$P" -h 127.0.0.1 -t bench/size -C 1 >"$WORK/size.out" &
SZ_PID=$!
sleep 0.3
run sizepub 30 env IOTLAT_TOPIC=bench/size IOTLAT_DEVICES=1 IOTLAT_RATE=10 IOTLAT_DURATION=0.5s \
    "$BIN/iotlat-publisher"
wait "$SZ_PID" || { echo "bench: could not measure the message size"; exit 1; }
SIZE=$(($(wc -c <"$WORK/size.out") - 1))

echo
echo "1. publisher throughput: messages Paho accepted per second (no subscriber;"
echo "   $SIZE-byte messages; 2 s)"
printf '   %-6s %14s %14s %8s\n' QoS "raw Paho" iotlat ratio
for qos in 0 1; do
    run raw_$qos 60 "$WORK/mqtt_raw" "$IOTLAT_MQTT_URL" bench/flood "$SIZE" 2 $qos
    raw=$(cat "$WORK/raw_$qos.out")
    # 1000 devices asking for 100 k msg/s in all, beyond what Paho takes
    # (tens of thousands per second), so the achieved rate is the ceiling.
    # Not more: the publisher sends every scheduled message however late,
    # and Paho takes each QoS 1 message without ever refusing one.
    run pub_$qos 120 env IOTLAT_TOPIC=bench/flood IOTLAT_MQTT_QOS=$qos \
        IOTLAT_DEVICES=1000 IOTLAT_RATE=100 IOTLAT_DURATION=2s IOTLAT_GRACE=30s \
        IOTLAT_REPORT_JSON="$WORK/pub_$qos.json" "$BIN/iotlat-publisher"
    got=$(field "$WORK/pub_$qos.json" "round(d['achieved_rate'])")
    failed=$(field "$WORK/pub_$qos.json" "d['send_failed']")
    printf '   %-6s %12s/s %12s/s %7.2f   (iotlat: %s refused by a full Paho queue)\n' $qos "$raw" "$got" \
        "$(python3 -c "print($got / max($raw, 1))")" "$failed"
done

# latency NAME ENV... : 100 devices x 100 msg/s for 5 s, subscriber first.
latency() {
    local name=$1; shift
    local T=bench/lat/$name/$RANDOM
    env "$@" IOTLAT_TOPIC=$T IOTLAT_DURATION=40s IOTLAT_REPORT_JSON="$WORK/sub_$name.json" \
        timeout 60 "$BIN/iotlat-subscriber" >"$WORK/sub_$name.out" 2>"$WORK/sub_$name.err" &
    local sub=$!
    sleep 1
    run pub_lat_$name 60 env "$@" IOTLAT_TOPIC=$T IOTLAT_DEVICES=100 IOTLAT_RATE=100 \
        IOTLAT_DURATION=5s "$BIN/iotlat-publisher"
    wait "$sub" || { echo "bench: subscriber $name failed"; cat "$WORK/sub_$name.err"; exit 1; }
    local f="$WORK/sub_$name.json"
    printf '   %-26s %9s %9s %9s %9s %8s\n' "$name" \
        "$(field "$f" "d['latency_us']['p50']")" "$(field "$f" "d['latency_us']['p99']")" \
        "$(field "$f" "d['service_latency_us']['p50']")" \
        "$(field "$f" "d['service_latency_us']['p99']")" \
        "$(field "$f" "d['received_unique']")"
}

echo
echo "2. latency at 10 k msg/s, publisher -> mosquitto -> subscriber (us)"
printf '   %-26s %9s %9s %9s %9s %8s\n' "" "p50" "p99" "svc p50" "svc p99" received
latency qos0 IOTLAT_MQTT_QOS=0
latency qos1 IOTLAT_MQTT_QOS=1
latency qos2 IOTLAT_MQTT_QOS=2
latency qos1-no-tcp-nodelay IOTLAT_MQTT_QOS=1 IOTLAT_MQTT_TCP_NODELAY=false
latency qos1-per-device-x100 IOTLAT_MQTT_QOS=1 IOTLAT_MQTT_CONNECTIONS=per-device \
    IOTLAT_MQTT_DEVICES=100
echo
echo "   (p50/p99 from the intended send time; svc = from the actual send time;"
echo "    received of 50000 sent.  Without TCP_NODELAY, Nagle's algorithm can add"
echo "    tens of ms; QoS 2 over MQTT 3.1.1 runs with 20 messages in flight, see"
echo "    IOTLAT_MQTT_MAX_INFLIGHT, and may not keep up with 10 k msg/s.)"
