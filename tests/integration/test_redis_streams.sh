#!/usr/bin/env bash
# The Redis driver in streams mode, against Debian's redis-server:
#  1. plain XREAD: publish -> subscribe, everything received; XADD's
#     approximate MAXLEN keeps the stream trimmed;
#  2. consumer group: publisher -> transformer -> subscriber, both readers in
#     a group, everything received through the hop and acknowledged (no
#     entry left pending);
#  3. consumer group, publisher first: the publisher creates the group in
#     wait_ready(), so a subscriber that starts a second later still gets
#     every entry (a stream keeps what the group has not read).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../conformance/servers/redis.sh"
trap 'srv_stop >/dev/null 2>&1 || true; cleanup' EXIT
export IOTLAT_DRIVER=redis IOTLAT_PROGRESS=0
S="IOTLAT_REDIS_MODE=streams"
cli() { redis-cli -p "$RPORT" "$@"; }
srv_start

echo "== 1: plain XREAD, MAXLEN ~ 500"
T=st1.$RANDOM
start sub env $(sub_env) $S IOTLAT_TOPIC=$T IOTLAT_DURATION=60s \
    IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
sleep 1
start pub env $(pub_env) $S IOTLAT_REDIS_MAXLEN=500 IOTLAT_TOPIC=$T IOTLAT_DEVICES=20 \
    IOTLAT_RATE=100 IOTLAT_DURATION=2s IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub; wait_for sub
len=$(cli XLEN "$T")
echo "XLEN $T = $len"
check "pub['sent'] == 4000 and pub['send_failed'] == 0" \
      "sub['received_unique'] == 4000 and sub['lost'] == 0 and sub['duplicates'] == 0" \
      "sub['malformed'] == 0 and sub['accounting']['balanced']" \
      "sub['devices_with_fin'] == 20" \
      "500 <= $len < 1000"
rm -f "$WORK"/*.json

echo "== 2: consumer group, through a transformer hop"
T=st2.$RANDOM
G="IOTLAT_REDIS_GROUP=iotlat-test"
start sub env $(sub_env) $S $G IOTLAT_TOPIC=$T.out IOTLAT_DURATION=60s \
    IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
start tra env $(tra_env) $S $G IOTLAT_IN_TOPIC=$T IOTLAT_OUT_TOPIC=$T.out \
    IOTLAT_DURATION=60s IOTLAT_REPORT_JSON=$WORK/tra.json "$BIN/iotlat-transformer"
sleep 1
start pub env $(pub_env) $S $G IOTLAT_TOPIC=$T IOTLAT_DEVICES=10 IOTLAT_RATE=100 \
    IOTLAT_DURATION=2s IOTLAT_ENCODING=binary IOTLAT_REPORT_JSON=$WORK/pub.json \
    "$BIN/iotlat-publisher"
wait_for pub; wait_for tra; wait_for sub
pend_in=$(cli XPENDING "$T" iotlat-test | head -1)
pend_out=$(cli XPENDING "$T.out" iotlat-test | head -1)
echo "pending: $T $pend_in, $T.out $pend_out"
check "pub['sent'] == 2000" \
      "tra['forwarded'] == 2010 and tra['input']['lost'] == 0" \
      "sub['received_unique'] == 2000 and sub['lost'] == 0 and sub['malformed'] == 0" \
      "[h['segment'] for h in sub['hops']] == ['publisher->hop1', 'hop1->subscriber']" \
      "sub['accounting']['balanced']" \
      "$pend_in == 0 and $pend_out == 0"
rm -f "$WORK"/*.json

echo "== 3: consumer group, the subscriber starts after the publisher"
T=st3.$RANDOM
start pub env $(pub_env) $S $G IOTLAT_TOPIC=$T IOTLAT_DEVICES=10 IOTLAT_RATE=100 \
    IOTLAT_DURATION=2s IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
sleep 1
start sub env $(sub_env) $S $G IOTLAT_TOPIC=$T IOTLAT_DURATION=60s \
    IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
wait_for pub; wait_for sub
check "pub['sent'] == 2000" \
      "sub['received_unique'] == 2000 and sub['lost'] == 0 and sub['accounting']['balanced']"
srv_stop
echo "redis streams: passed"
