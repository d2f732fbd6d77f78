#!/usr/bin/env bash
# Redis goes away while the plotter follows a run and comes back (with its
# append-only file, as a production store would): the plotter reports Redis
# down meanwhile (iotlat_plotter_redis_up 0) but keeps serving, then reads
# on from the last record it had, so at the end its totals and percentiles
# still equal the subscriber's report and no record was read twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/plotter_lib.sh"
REDIS_PORT=$(free_port)
redis_up() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync always --dir "$WORK" >>"$WORK/redis.log" 2>&1 &
    RPID=$!
    PIDS+=($RPID)
    for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done
    echo "redis-server did not start"; cat "$WORK/redis.log"; return 1
}
redis_up
RUN=plotoutage
PLOT=$(free_port)
start_plotter plot "$PLOT" IOTLAT_PLOTTER_INTERVAL=250ms IOTLAT_PLOTTER_NDJSON="$WORK/docs.ndjson"
measured_run wing 10 100 8s
sleep 3
kill -9 "$RPID"; wait "$RPID" 2>/dev/null || true
sleep 1.5
down=$(metric "$PLOT" "iotlat_plotter_redis_up{run=\"$RUN\"}")
[ "$down" = 0 ] || { echo "FAIL redis_up is '$down' while Redis is down"; exit 1; }
echo "ok   iotlat_plotter_redis_up 0 while Redis is down; /metrics still served"
sleep 1.5
redis_up
wait_for pub_wing
wait_for sub_wing
wait_received "$PLOT" "$(received_sum wing)"
curl -s "http://127.0.0.1:$PLOT/metrics" >"$WORK/final.prom"
stop_process plot
redis-cli -p "$REDIS_PORT" xlen "iotlat:$RUN:rec:wing" >"$WORK/xlen.txt"
kill "$RPID" 2>/dev/null || true
python3 - "$WORK" "$RUN" <<'PY'
import json, sys
work, run = sys.argv[1], sys.argv[2]
sub = json.load(open(f'{work}/sub_wing.json'))
m = {}
for line in open(f'{work}/final.prom'):
    if not line.startswith('#') and line.strip():
        k, v = line.rsplit(' ', 1)
        m[k] = float(v)
bad = 0
def check(ok, what):
    global bad
    print(('ok   ' if ok else 'FAIL ') + what)
    bad += not ok
lab = f'run="{run}",driver="zeromq",topic="wing"'
check(sub['store']['outages'] >= 1, f'the subscriber saw the outage too: {sub["store"]}')
check(m[f'iotlat_plotter_redis_up{{run="{run}"}}'] == 1, 'Redis up again')
check(m[f'iotlat_plotter_redis_errors_total{{run="{run}"}}'] >= 1, 'the failed reads were counted')
check(m[f'iotlat_messages_received_total{{{lab}}}'] == sub['received'], f'received {sub["received"]}')
for q, k in (('0.5', 'p50'), ('0.99', 'p99'), ('1', 'max')):
    v = round(m[f'iotlat_e2e_latency_quantile_seconds{{{lab},window="run",quantile="{q}"}}'] * 1e6)
    check(v == sub['latency_us'][k], f'q{q} = {sub["latency_us"][k]} us (plotter {v})')
xlen = int(open(f'{work}/xlen.txt').read())
check(m[f'iotlat_plotter_records_total{{run="{run}"}}'] == xlen, f'{xlen} records, each read once')
docs = [json.loads(l) for l in open(f'{work}/docs.ndjson')]
check(sum(1 for d in docs if d['iotlat']['topic'] == 'wing') == xlen, 'one document per record')
sys.exit(1 if bad else 0)
PY
