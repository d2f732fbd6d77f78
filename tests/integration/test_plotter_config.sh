#!/usr/bin/env bash
# Every bad plotter setting stops iotlat-plotter at start with exit status 2
# and one line that names the variable, the value and what is accepted; the
# measuring binaries, which share the environment in a Kubernetes
# ConfigMap, ignore the plotter's file and address settings.
. "$(dirname "$0")/lib.sh"
REDIS=redis://127.0.0.1:9 # nothing listens there: none of these gets that far

# expect_bad "VAR=value ..." WORDS...: exit 2, one line, naming every word.
expect_bad() {
    local envs=$1 rc=0
    shift
    # shellcheck disable=SC2086
    env -i PATH="$PATH" ASAN_OPTIONS=detect_leaks=0 $envs "$BIN/iotlat-plotter" \
        >"$WORK/out" 2>&1 </dev/null || rc=$?
    if [ $rc -ne 2 ] || [ "$(grep -c . "$WORK/out")" -ne 1 ]; then
        echo "FAIL $envs: exit $rc (want 2, one line):"; cat "$WORK/out"; exit 1
    fi
    for w in "$@"; do
        grep -qF -- "$w" "$WORK/out" || { echo "FAIL $envs: no '$w' in: $(cat "$WORK/out")"; exit 1; }
    done
    echo "ok   $envs: $(cat "$WORK/out")"
}

expect_bad "" "IOTLAT_REDIS_URL" "expected redis://"
expect_bad "IOTLAT_REDIS_URL=http://x:1" "IOTLAT_REDIS_URL is invalid" "redis://"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_LISTEN=nowhere" \
    "IOTLAT_PLOTTER_LISTEN='nowhere'" "host:port"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_LISTEN=127.0.0.1:99999" \
    "IOTLAT_PLOTTER_LISTEN='127.0.0.1:99999'" "1 to 65535"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_LISTEN=no-such-host.invalid:9464" \
    "IOTLAT_PLOTTER_LISTEN='no-such-host.invalid:9464'" "resolve"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_TOPICS=some" \
    "IOTLAT_PLOTTER_TOPICS='some'" "all, none or a count"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_TOPICS=0" "IOTLAT_PLOTTER_TOPICS='0'"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_INTERVAL=1ms" \
    "IOTLAT_PLOTTER_INTERVAL='1ms'" "10ms"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_INTERVAL=often" "IOTLAT_PLOTTER_INTERVAL='often'"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_NDJSON=/nonexistent/dir/x.ndjson" \
    "IOTLAT_PLOTTER_NDJSON='/nonexistent/dir/x.ndjson'" "writable"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_PNG=/nonexistent/a/b" \
    "IOTLAT_PLOTTER_PNG='/nonexistent/a/b'" "writable directory"
# The URL is a secret (it may hold a password): named, never shown.
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_ES_URL=ftp://user:hunter2@es" \
    "IOTLAT_PLOTTER_ES_URL='***'" "http:// or https://"
grep -q hunter2 "$WORK/out" && { echo "FAIL the password was printed"; exit 1; }
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_ES_INDEX=Latency" \
    "IOTLAT_PLOTTER_ES_INDEX='Latency'" "lower-case"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_ES_QUEUE=0" "IOTLAT_PLOTTER_ES_QUEUE='0'" "integer"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_ONCE=maybe" "IOTLAT_PLOTTER_ONCE='maybe'" "true or false"
expect_bad "IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_LISTENING=1" "IOTLAT_PLOTTER_LISTENING"

# A port already taken is a runtime failure (1), with the reason.
PORT=$(free_port)
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(20)' "$PORT" &
PIDS+=($!)
sleep 0.3
rc=0
env -i PATH="$PATH" ASAN_OPTIONS=detect_leaks=0 IOTLAT_REDIS_URL=$REDIS IOTLAT_PLOTTER_LISTEN=127.0.0.1:$PORT \
    "$BIN/iotlat-plotter" >"$WORK/out" 2>&1 </dev/null || rc=$?
[ $rc -eq 1 ] && grep -q "IOTLAT_PLOTTER_LISTEN='127.0.0.1:$PORT'.*in use" "$WORK/out" ||
    { echo "FAIL port in use: exit $rc: $(cat "$WORK/out")"; exit 1; }
echo "ok   port in use: $(cat "$WORK/out")"

# The subscriber shares the environment and does not care where the
# plotter writes.
rc=0
env -i PATH="$PATH" ASAN_OPTIONS=detect_leaks=0 IOTLAT_PLUGIN_DIR="$IOTLAT_PLUGIN_DIR" \
    IOTLAT_PLOTTER_NDJSON=/nonexistent/dir/x.ndjson IOTLAT_PLOTTER_PNG=/nonexistent/a/b \
    IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:9 IOTLAT_DURATION=200ms IOTLAT_PROGRESS=0 \
    "$BIN/iotlat-subscriber" >"$WORK/out" 2>&1 </dev/null || rc=$?
[ $rc -eq 0 ] || { echo "FAIL the subscriber refused the plotter's settings: $(cat "$WORK/out")"; exit 1; }
echo "ok   the subscriber ignores the plotter's paths"

# --help lists the plotter's options and the shared ones it uses.
"$BIN/iotlat-plotter" --help >"$WORK/help"
for v in IOTLAT_PLOTTER_LISTEN IOTLAT_PLOTTER_TOPICS IOTLAT_REDIS_URL IOTLAT_RUN_ID; do
    grep -q "$v" "$WORK/help" || { echo "FAIL --help lacks $v"; exit 1; }
done
grep -q IOTLAT_DEVICES "$WORK/help" && { echo "FAIL --help lists publisher options"; exit 1; }
echo "ok   --help"
