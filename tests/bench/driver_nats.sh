#!/usr/bin/env bash
# Benchmarks of the NATS driver against Debian's nats-server on loopback,
# each iotlat figure printed next to a bare nats.c baseline measured in the
# same run (the machine is small and shared: the ratio is what matters):
#   1. publisher throughput: iotlat-publisher asked for far more than it can
#      send, against a plain nats.c publish loop with the same message size,
#      with SEND_ASAP on (the driver's default) and off;
#   2. latency at 10 k msg/s (100 devices x 100 msg/s for 5 s), publisher to
#      subscriber, p50/p99, with SEND_ASAP on and off, and through JetStream.
# Prints the figures; missed expectations never fail the run, a crashed or
# hung process or a missing report does (exit 1).
# Usage: bash tests/bench/driver_nats.sh   (after `make`; O=build-dir optional)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
O=${O:-.}
BIN=$ROOT/$O/bin
export IOTLAT_PLUGIN_DIR=$ROOT/$O/plugins IOTLAT_DRIVER=nats IOTLAT_PROGRESS=0
command -v nats-server >/dev/null || { echo "bench: nats-server is not installed" >&2; exit 1; }
[ -x "$BIN/iotlat-publisher" ] && [ -f "$IOTLAT_PLUGIN_DIR/nats.so" ] ||
    { echo "bench: build first (make)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/iotlat-bench-nats.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# The baseline: nothing but nats.c calls.  "size" prints the length of the
# next message on a subject (to match iotlat's message size); "flood" sends
# fixed-size messages as fast as possible for a time and prints msg/s.
cat >"$WORK/nats_raw.c" <<'EOF'
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
int main(int argc, char **argv)
{
    natsConnection *nc = NULL;
    natsOptions *o = NULL;
    if (argc < 4) {
        fprintf(stderr, "usage: nats_raw size|flood URL SUBJECT [BYTES SECONDS SENDASAP]\n");
        return 2;
    }
    if (natsOptions_Create(&o) != NATS_OK || natsOptions_SetURL(o, argv[2]) != NATS_OK ||
        (argc > 6 && natsOptions_SetSendAsap(o, atoi(argv[6]) != 0) != NATS_OK) ||
        natsConnection_Connect(&nc, o) != NATS_OK) {
        fprintf(stderr, "nats_raw: cannot connect to %s\n", argv[2]);
        return 1;
    }
    if (strcmp(argv[1], "size") == 0) {
        natsSubscription *sub = NULL;
        natsMsg *m = NULL;
        if (natsConnection_SubscribeSync(&sub, nc, argv[3]) != NATS_OK ||
            natsSubscription_NextMsg(&m, sub, 20000) != NATS_OK)
            return 1;
        printf("%d\n", natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
        natsSubscription_Destroy(sub);
    } else {
        int len = atoi(argv[4]);
        double secs = atof(argv[5]), t0 = now(), t1;
        char *buf = calloc(1, (size_t)len + 1);
        long n = 0;
        memset(buf, 'x', (size_t)len);
        do {
            for (int i = 0; i < 1000; i++)
                if (natsConnection_Publish(nc, argv[3], buf, len) != NATS_OK)
                    return 1;
            n += 1000;
        } while ((t1 = now()) - t0 < secs);
        natsConnection_FlushTimeout(nc, 10000);
        printf("%.0f\n", (double)n / (now() - t0));
        free(buf);
    }
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    nats_Close();
    return 0;
}
EOF
cc -O2 -o "$WORK/nats_raw" "$WORK/nats_raw.c" -lnats

P=$(port)
nats-server -a 127.0.0.1 -p "$P" -js -sd "$WORK/js" >"$WORK/nats-server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.1; done
export IOTLAT_NATS_URL=nats://127.0.0.1:$P
URL=$IOTLAT_NATS_URL

# field FILE EXPR : a value from a JSON report (d is the report).
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# run NAME SECONDS CMD... : run with a time limit; a failure fails the bench.
run() {
    local name=$1 limit=$2; shift 2
    if ! timeout "$limit" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
        echo "bench: $name failed"; cat "$WORK/$name.out" "$WORK/$name.err"; exit 1
    fi
}

echo "nats driver benchmark ($(nats-server --version), $(nproc) CPUs)"

# The size of one iotlat message as the publisher sends it.
"$WORK/nats_raw" size "$URL" bench.size >"$WORK/size.out" &
SZ_PID=$!
sleep 0.3
run sizepub 30 env IOTLAT_TOPIC=bench.size IOTLAT_DEVICES=1 IOTLAT_RATE=10 IOTLAT_DURATION=0.5s \
    "$BIN/iotlat-publisher"
wait "$SZ_PID" || { echo "bench: could not measure the message size"; exit 1; }
SIZE=$(cat "$WORK/size.out")

echo
echo "1. publisher throughput (no subscriber; $SIZE-byte messages)"
printf '   %-10s %14s %14s %8s\n' SEND_ASAP "raw nats.c" iotlat ratio
for asap in true false; do
    flag=1; [ $asap = true ] || flag=0
    run raw_$asap 60 "$WORK/nats_raw" flood "$URL" bench.flood "$SIZE" 2 "$flag"
    raw=$(cat "$WORK/raw_$asap.out")
    # 1000 devices asking for 4 M msg/s for 1 s: beyond what one publisher
    # thread sends, so it runs late, sends the backlog as fast as it can, and
    # its achieved rate (sent over the time it took) is its ceiling.
    run pub_$asap 60 env IOTLAT_TOPIC=bench.flood IOTLAT_NATS_SEND_ASAP=$asap \
        IOTLAT_DEVICES=1000 IOTLAT_RATE=4000 IOTLAT_DURATION=1s IOTLAT_GRACE=1s \
        IOTLAT_REPORT_JSON="$WORK/pub_$asap.json" "$BIN/iotlat-publisher"
    got=$(field "$WORK/pub_$asap.json" "round(d['achieved_rate'])")
    printf '   %-10s %12s/s %12s/s %7.2f\n' $asap "$raw" "$got" \
        "$(python3 -c "print($got / max($raw, 1))")"
done

# latency NAME ENV... : 100 devices x 100 msg/s for 5 s, subscriber first.
latency() {
    local name=$1; shift
    local T=bench.lat.$name.$RANDOM
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
echo "2. latency at 10 k msg/s, publisher -> nats-server -> subscriber (us)"
printf '   %-26s %9s %9s %9s %9s %8s\n' "" "p50" "p99" "svc p50" "svc p99" received
latency core-send-asap IOTLAT_NATS_SEND_ASAP=true
latency core-buffered IOTLAT_NATS_SEND_ASAP=false
latency jetstream-async IOTLAT_NATS_JETSTREAM=true
latency jetstream-sync IOTLAT_NATS_JETSTREAM=true IOTLAT_NATS_JS_PUBLISH=sync
echo
echo "   (p50/p99 from the intended send time; svc = from the actual send time;"
echo "    the design expects p50 near 105 us with SEND_ASAP, 680 us without)"
