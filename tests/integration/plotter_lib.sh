# Helpers for the plotter tests (sourced after lib.sh): a short measured
# run whose results land in a real Redis, a plotter on a free port, and
# waiting for it to have read everything.

# measured_run NAME DEVICES RATE DURATION: a publisher -> subscriber pair over
# ZeroMQ on topic NAME, results in Redis ($REDIS_PORT) under run $RUN.
# Reports in $WORK/pub_NAME.json and $WORK/sub_NAME.json.
measured_run() {
    local name=$1 devices=$2 rate=$3 duration=$4 port
    port=$(free_port)
    start "sub_$name" env IOTLAT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" IOTLAT_RUN_ID="$RUN" \
        IOTLAT_PROGRESS=0 IOTLAT_ZEROMQ_CONNECT="tcp://127.0.0.1:$port" IOTLAT_TOPIC="$name" \
        IOTLAT_DURATION=60s IOTLAT_REPORT_JSON="$WORK/sub_$name.json" "$BIN/iotlat-subscriber"
    start "pub_$name" env IOTLAT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" IOTLAT_RUN_ID="$RUN" \
        IOTLAT_PROGRESS=0 IOTLAT_ZEROMQ_BIND="tcp://127.0.0.1:$port" IOTLAT_TOPIC="$name" \
        IOTLAT_DEVICES="$devices" IOTLAT_RATE="$rate" IOTLAT_DURATION="$duration" \
        IOTLAT_REPORT_JSON="$WORK/pub_$name.json" "$BIN/iotlat-publisher"
}

# start_plotter NAME PORT [VAR=value...]: a following plotter serving
# /metrics on 127.0.0.1:PORT; waits until it answers.
start_plotter() {
    local name=$1 port=$2
    shift 2
    start "$name" env IOTLAT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" IOTLAT_RUN_ID="$RUN" \
        IOTLAT_PROGRESS=0 IOTLAT_PLOTTER_LISTEN="127.0.0.1:$port" "$@" "$BIN/iotlat-plotter"
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
        sleep 0.1
    done
    echo "plotter $name does not answer on port $port"; cat "$WORK/$name.err"; return 1
}

# metric PORT SERIES: the value of one series (exact name and labels as the
# plotter writes them), or nothing.
metric() {
    curl -s "http://127.0.0.1:$1/metrics" | awk -v s="$2" 'index($0, s " ") == 1 { print $2 }'
}

# wait_received PORT N: until the plotter's total of received messages of
# all topics is N (it has read every record), at most 20 s.
wait_received() {
    local v=""
    for _ in $(seq 200); do
        v=$(metric "$1" "iotlat_messages_received_total{run=\"$RUN\",driver=\"zeromq\",topic=\"_all\"}")
        [ "$v" = "$2" ] && return 0
        sleep 0.1
    done
    echo "the plotter on port $1 shows $v messages received, expected $2"; return 1
}

# received_sum NAME...: received messages in the subscribers' reports.
received_sum() {
    local n=0 f
    for f in "$@"; do
        n=$((n + $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["received"])' "$WORK/sub_$f.json")))
    done
    echo $n
}

# stop_process NAME: SIGTERM, then wait for it; fails on a non-zero exit.
stop_process() {
    local pid_var="PID_$1"
    pkill -TERM -P "${!pid_var}" 2>/dev/null || true
    wait_for "$1"
}
