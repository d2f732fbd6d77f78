#!/usr/bin/env bash
# driver_redis.sh - what the Redis driver costs, next to a bare hiredis client
# measured in the same run against the same redis-server.  Prints figures
# only; nothing here fails on a slow machine (exit 1 only if something
# crashed or produced no report).
#
#  1. publish throughput with no subscriber: a bare hiredis loop pipelining
#     PUBLISH (or XADD) in batches of 1000, against iotlat-publisher asked for
#     far more than it can send (its achieved rate is its top rate);
#  2. end-to-end latency at 10 k msg/s (100 devices x 100 msg/s, 5 s):
#     p50/p99 from the intended send time and from the actual send time.
#
# Usage: O=. bash tests/bench/driver_redis.sh   (after `make`)
set -euo pipefail
cd "$(dirname "$0")/../.."
O=${O:-.}
export IL_BIN_DIR=$PWD/$O/bin IL_PLUGIN_DIR=$PWD/$O/plugins
. tests/integration/lib.sh
. tests/conformance/servers/redis.sh
trap 'srv_stop >/dev/null 2>&1 || true; cleanup' EXIT
export IOTLAT_DRIVER=redis IOTLAT_PROGRESS=0

# The baseline: hiredis's own pipelining, as a Redis user would write it.
# Built here (the bench Makefile rule links libzmq only).
cc -O2 -std=c11 -D_GNU_SOURCE -o "$WORK/hiredis_raw" -x c - -lhiredis <<'C'
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
int main(int argc, char **argv)
{
    if (argc < 6) return 2;
    int port = atoi(argv[1]), streams = !strcmp(argv[5], "streams");
    long n = atol(argv[2]), window = atol(argv[3]);
    size_t len = (size_t)atol(argv[4]);
    char *payload = malloc(len);
    memset(payload, 'x', len);
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c || c->err) { fprintf(stderr, "connect failed\n"); return 1; }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long sent = 0; sent < n; sent += window) {
        for (long i = 0; i < window; i++) {
            if (streams)
                redisAppendCommand(c, "XADD rawbench MAXLEN ~ 1000000 * data %b", payload, len);
            else
                redisAppendCommand(c, "PUBLISH rawbench %b", payload, len);
        }
        for (long i = 0; i < window; i++) {
            void *r;
            if (redisGetReply(c, &r) != REDIS_OK) { fprintf(stderr, "%s\n", c->errstr); return 1; }
            freeReplyObject(r);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.0f\n", (double)n / ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9));
    redisFree(c);
    return 0;
}
C

srv_start
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# Size the baseline's payload like iotlat's messages: the JSON envelope plus
# the default payload, as the publisher reports it is not available, so take
# one message off the wire.
redis-cli -p "$RPORT" subscribe sizeprobe >"$WORK/probe.txt" &
PROBE=$!
sleep 0.3
env $(pub_env) IOTLAT_TOPIC=sizeprobe IOTLAT_DEVICES=1 IOTLAT_RATE=10 IOTLAT_DURATION=0.2s \
    IOTLAT_WAIT_READY=0 "$BIN/iotlat-publisher" >/dev/null 2>&1
sleep 0.3
kill $PROBE 2>/dev/null || true; wait $PROBE 2>/dev/null || true
SIZE=$(awk 'NR==6 {print length($0)}' "$WORK/probe.txt")
SIZE=${SIZE:-150}

declare -A R
for mode in pubsub streams; do
    R[raw_$mode]=$("$WORK/hiredis_raw" "$RPORT" 500000 1000 "$SIZE" "$mode")
    env $(pub_env) IOTLAT_REDIS_MODE=$mode IOTLAT_WAIT_READY=0 IOTLAT_TOPIC=top.$mode \
        IOTLAT_DEVICES=100 IOTLAT_RATE=20000 IOTLAT_DURATION=3s \
        IOTLAT_REPORT_JSON="$WORK/top_$mode.json" timeout 120 "$BIN/iotlat-publisher" \
        >/dev/null 2>"$WORK/top_$mode.err"
    R[top_$mode]=$(json "$WORK/top_$mode.json" "round(d['achieved_rate'])")
    R[fail_$mode]=$(json "$WORK/top_$mode.json" "d['send_failed']")
    redis-cli -p "$RPORT" del top.$mode rawbench >/dev/null

    T=lat.$mode
    start sub env $(sub_env) IOTLAT_REDIS_MODE=$mode IOTLAT_TOPIC=$T IOTLAT_DURATION=60s \
        IOTLAT_REPORT_JSON="$WORK/sub_$mode.json" "$BIN/iotlat-subscriber"
    sleep 1
    env $(pub_env) IOTLAT_REDIS_MODE=$mode IOTLAT_TOPIC=$T IOTLAT_DEVICES=100 IOTLAT_RATE=100 \
        IOTLAT_DURATION=5s IOTLAT_REPORT_JSON="$WORK/pub_$mode.json" timeout 120 \
        "$BIN/iotlat-publisher" >/dev/null 2>"$WORK/pub_$mode.err"
    wait_for sub
    for k in p50 p99; do
        R[lat_${mode}_$k]=$(json "$WORK/sub_$mode.json" "d['latency_us']['$k']")
        R[svc_${mode}_$k]=$(json "$WORK/sub_$mode.json" "d['service_latency_us']['$k']")
    done
    R[recv_$mode]=$(json "$WORK/sub_$mode.json" "f\"{d['received_unique']}/{d['expected']}\"")
done
srv_stop

echo "Redis driver benchmark ($(redis-server --version | awk '{print $3}'), hiredis 0.14, ${SIZE}-byte messages, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-44s %14s %14s\n' "" pubsub streams
printf '%-44s %14s %14s\n' "publish msg/s, bare hiredis (pipeline 1000)" "${R[raw_pubsub]}" "${R[raw_streams]}"
printf '%-44s %14s %14s\n' "publish msg/s, iotlat-publisher top rate" "${R[top_pubsub]}" "${R[top_streams]}"
printf '%-44s %14s %14s\n' "  send failures at top rate" "${R[fail_pubsub]}" "${R[fail_streams]}"
printf '%-44s %14s %14s\n' "10k msg/s: received/expected" "${R[recv_pubsub]}" "${R[recv_streams]}"
printf '%-44s %14s %14s\n' "10k msg/s: latency p50 us (intended)" "${R[lat_pubsub_p50]}" "${R[lat_streams_p50]}"
printf '%-44s %14s %14s\n' "10k msg/s: latency p99 us (intended)" "${R[lat_pubsub_p99]}" "${R[lat_streams_p99]}"
printf '%-44s %14s %14s\n' "10k msg/s: latency p50 us (sent)" "${R[svc_pubsub_p50]}" "${R[svc_streams_p50]}"
printf '%-44s %14s %14s\n' "10k msg/s: latency p99 us (sent)" "${R[svc_pubsub_p99]}" "${R[svc_streams_p99]}"
