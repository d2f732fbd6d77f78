#!/usr/bin/env bash
# Replicas pair up through Redis: 20 publishers, 20 transformers and 21
# subscribers started as separate processes with one environment each, the
# way a Deployment starts them.  Every publisher topic must be claimed by
# exactly one transformer and every transformer output by exactly one
# subscriber; one subscriber is killed with SIGKILL mid-run and the spare
# must take its topic over once the lease expires, with the gap shown; every
# index entry has its records, totals add up, and a subscriber makes at most
# about 2 Redis writes per second (counted by Redis: INFO commandstats).
#
# DRIVER=zeromq (default) discovers endpoints through Redis; another driver
# name uses tests/conformance/servers/<driver>.sh for its broker.
. "$(dirname "$0")/lib.sh"
DRIVER=${DRIVER:-zeromq}
N=${REPLICAS:-20}
start_redis
export IOTLAT_DRIVER=$DRIVER IOTLAT_REDIS_URL=redis://127.0.0.1:$REDIS_PORT \
    IOTLAT_RUN_ID=replicas IOTLAT_PROGRESS=0 IOTLAT_LEASE=6s IOTLAT_WAIT_READY=30s \
    IOTLAT_CLOCK_WARN=100ms
if [ "$DRIVER" = zeromq ]; then
    PUB_ENV="IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:*"; TRA_ENV=$PUB_ENV; SUB_ENV=
else
    . "$(dirname "$0")/../conformance/servers/$DRIVER.sh"
    srv_start
    PUB_ENV=$(pub_env); TRA_ENV=$(tra_env); SUB_ENV=$(sub_env hop)
fi

for i in $(seq "$N"); do
    start "sub$i" env $SUB_ENV IOTLAT_CLAIM=transformer IOTLAT_DURATION=60s \
        IOTLAT_REPORT_JSON="$WORK/sub$i.json" "$BIN/iotlat-subscriber"
    start "tra$i" env $TRA_ENV IOTLAT_CLAIM=publisher IOTLAT_DURATION=60s \
        IOTLAT_REPORT_JSON="$WORK/tra$i.json" "$BIN/iotlat-transformer"
done
for i in $(seq "$N"); do
    start "pub$i" env $PUB_ENV IOTLAT_TOPIC='metro.{id}' IOTLAT_DEVICES=10 IOTLAT_RATE=20 \
        IOTLAT_DURATION=14s IOTLAT_REPORT_JSON="$WORK/pub$i.json" "$BIN/iotlat-publisher"
done
# Once everything flows, kill one subscriber; then start the spare.
sleep 4
VICTIM_TOPIC=
for _ in $(seq 50); do
    VICTIM_TOPIC=$(grep -ho 'claimed transformer topic [^ ]*' "$WORK/sub1.err" | awk '{print $4}')
    [ -n "$VICTIM_TOPIC" ] && break; sleep 0.2
done
[ -n "$VICTIM_TOPIC" ] || { echo "sub1 never claimed a topic"; cat "$WORK/sub1.err"; exit 1; }
kill9 sub1
echo "killed sub1 (topic $VICTIM_TOPIC)"
start spare env $SUB_ENV IOTLAT_CLAIM=transformer IOTLAT_DURATION=60s \
    IOTLAT_REPORT_JSON="$WORK/spare.json" "$BIN/iotlat-subscriber"
# Steady state, measured by Redis itself: write commands per second over 4 s.
writes() {
    redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | python3 -c '
import sys, re
w = {"xadd", "eval", "evalsha", "pexpire", "sadd", "hset", "zadd", "set", "del"}
print(sum(int(m.group(2)) for m in (re.match(r"cmdstat_(\w+):calls=(\d+)", l) for l in sys.stdin)
          if m and m.group(1) in w))'
}
sleep 1.5
W0=$(writes); T0=$(date +%s.%N)
sleep 4
W1=$(writes); T1=$(date +%s.%N)
redis-cli -p "$REDIS_PORT" info commandstats | grep -E "xadd|eval|pexpire|sadd|hset|zadd|cmdstat_set|del" >"$WORK/cmdstats.txt"
python3 -c "
rate = ($W1 - $W0) / ($T1 - $T0)
# Per second: a subscriber writes 1 record and renews its 6 s lease every 2 s
# (EVAL + the PEXPIRE inside it): 2 commands; a transformer only renews: 1;
# the spare's claim attempts (EVAL + SET inside): 4 at most.
bound = 2 * $N + $N + 4
print(f'ok   {rate:.1f} Redis write commands/s for $N subscribers and $N transformers (bound {bound})')
assert rate <= bound, 'too many Redis writes'
"

for i in $(seq "$N"); do wait_for "pub$i"; done
for i in $(seq "$N"); do wait_for "tra$i"; done
for i in $(seq 2 "$N"); do wait_for "sub$i"; done
wait_for spare
cat "$WORK/spare.out"
redis-cli -p "$REDIS_PORT" --raw smembers iotlat:replicas:index >"$WORK/index.txt"
for t in $(cat "$WORK/index.txt"); do
    echo "$t $(redis-cli -p "$REDIS_PORT" --raw xlen "iotlat:replicas:rec:$t")"
done >"$WORK/xlen.txt"
export N VICTIM_TOPIC
check \
  "len({p['topic'] for p in reports('pub')}) == $N" \
  "sorted(t['store']['claimed_topic'] for t in reports('tra')) == sorted(p['topic'] for p in reports('pub'))" \
  "sorted(s['store']['claimed_topic'] for s in reports('sub', 'spare')) == sorted(p['topic'] + '.out' for p in reports('pub'))" \
  "spare['store']['claimed_topic'] == '$VICTIM_TOPIC' and spare['store']['takeover']" \
  "spare['first_receive_us'] - spare['store']['previous_last_record_us'] >= 1000000" \
  "spare['accounting']['balanced'] and spare['expected'] > 0" \
  "all(s['accounting']['balanced'] and s['lost'] == 0 for s in reports('sub'))" \
  "sum(s['expected'] for s in reports('sub', 'spare')) == sum(p['scheduled'] for p in reports('pub'))" \
  "all(s['store']['writes'] <= 2 * s['duration_s'] + 10 for s in reports('sub', 'spare'))" \
  "all(s['clock']['known'] and 0 <= s['clock']['bound_us'] < 100000 and not s['clock']['warning'] for s in reports('sub'))"
# Every topic with results has records, and every subscriber's topic is indexed.
python3 - "$WORK" <<'PY'
import json, os, sys
work = sys.argv[1]
xlen = dict(l.split() for l in open(os.path.join(work, 'xlen.txt')))
claimed = {json.load(open(os.path.join(work, f)))['store']['claimed_topic']
           for f in os.listdir(work) if f.startswith(('sub', 'spare')) and f.endswith('.json')}
assert claimed <= set(xlen), f"not indexed: {claimed - set(xlen)}"
assert all(int(n) >= 3 for n in xlen.values()), f"too few records: {xlen}"
print(f"ok   {len(xlen)} indexed topics, each with >= 3 per-second records")
PY
