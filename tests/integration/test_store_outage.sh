#!/usr/bin/env bash
# Redis goes away mid-run and comes back: measuring goes on, the records of
# the seconds it was away are buffered and written when it returns, so every
# second of results is present afterwards, and the report says how long the
# store was unreachable.  (redis-server runs with an fsync'ed append-only
# file so that what it had before the SIGKILL survives, as a production
# store would.)
. "$(dirname "$0")/lib.sh"
P1=$(free_port)
RPORT=$(free_port)
redis_up() {
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync always --dir "$WORK" >>"$WORK/redis.log" 2>&1 &
    RPID=$!
    for _ in $(seq 100); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done
    echo "redis-server did not start"; cat "$WORK/redis.log"; return 1
}
redis_up
export IOTLAT_REDIS_URL=redis://127.0.0.1:$RPORT IOTLAT_RUN_ID=outage IOTLAT_PROGRESS=0
start sub env IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$P1 IOTLAT_TOPIC=plant.1 \
    IOTLAT_DURATION=60s IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
start pub env IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:$P1 IOTLAT_TOPIC=plant.1 \
    IOTLAT_DEVICES=10 IOTLAT_RATE=50 IOTLAT_DURATION=9s IOTLAT_REPORT_JSON=$WORK/pub.json \
    "$BIN/iotlat-publisher"
sleep 3
kill -9 "$RPID"; wait "$RPID" 2>/dev/null || true
echo "redis killed"
sleep 3
redis_up
echo "redis back"
wait_for pub
wait_for sub
cat "$WORK/sub.out"
redis-cli -p "$RPORT" --raw xrange iotlat:outage:rec:plant.1 - + \
    | awk 'prev=="t_us"{print} {prev=$0}' >"$WORK/seconds.txt"
kill "$RPID" 2>/dev/null || true
python3 - "$WORK/seconds.txt" "$WORK/sub.json" <<'PY'
import json, sys
ts = [int(l) for l in open(sys.argv[1]) if l.strip()]
sub = json.load(open(sys.argv[2]))
span = (sub['last_receive_us'] - sub['first_receive_us']) / 1e6
gaps = [(b - a) / 1e6 for a, b in zip(ts, ts[1:])]
print(f"{len(ts)} records over {span:.1f} s of traffic, largest gap {max(gaps):.2f} s")
assert ts == sorted(ts), "records out of order"
assert max(gaps) < 1.6, f"a second of results is missing: gaps {gaps}"
assert len(ts) >= span, "fewer records than seconds"
st = sub['store']
assert st['outages'] >= 1 and st['unreachable_us'] >= 2_000_000, st
assert st['buffered'] == 0 and st['dropped'] == 0, st
assert sub['accounting']['balanced'] and sub['lost'] == 0, "measuring must not suffer"
print("ok   every second present; store unreachable for %.1f s" % (st['unreachable_us'] / 1e6))
PY
