#!/usr/bin/env bash
# The one conformance suite every driver passes: usage `conformance.sh DRIVER`.
#
# servers/DRIVER.sh provides the broker side (see servers/README in the
# comments of servers/zeromq.sh): srv_start, srv_kill, srv_restart,
# srv_stop, and the environment of each role: pub_env, tra_env, sub_env
# {direct|hop}, down_env (a broker address where nothing listens).
#
# Cases:
#  1. publish N messages, receive all with the envelope intact (json);
#  2. the same through a transformer hop (binary envelope);
#  3. the broker is down at start: a clear error, a non-zero exit, quickly;
#  4. the broker is killed mid-run and started again: the disconnect is
#     reported with its window, the clients reconnect, and the accounting is
#     exact: every scheduled message is received or counted lost, per device.
set -euo pipefail
DRIVER=${1:?usage: conformance.sh DRIVER}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../integration/lib.sh"
. "$HERE/servers/$DRIVER.sh"
export IOTLAT_DRIVER=$DRIVER IOTLAT_PROGRESS=0 IOTLAT_LOG_LEVEL=info
trap 'rc=$?; srv_stop >/dev/null 2>&1 || true; (exit $rc); cleanup' EXIT
case_dir() { rm -f "$WORK"/*.json; }

echo "== $DRIVER 1: publish and receive, envelope intact"
srv_start
T=conf1.$RANDOM
start sub env $(sub_env direct) IOTLAT_TOPIC=$T IOTLAT_DURATION=60s \
    IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
sleep "${SUB_SETTLE:-1}"
start pub env $(pub_env) IOTLAT_TOPIC=$T IOTLAT_DEVICES=20 IOTLAT_RATE=100 \
    IOTLAT_DURATION=2s IOTLAT_PAYLOAD='{"dev":"d{{device}}","seq":{{seq}}}' \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub; wait_for sub
check "pub['sent'] == 4000 and pub['send_failed'] == 0" \
      "sub['received'] == 4000 and sub['received_unique'] == 4000" \
      "sub['lost'] == 0 and sub['duplicates'] == 0 and sub['malformed'] == 0" \
      "sub['accounting']['balanced'] and sub['accounting']['tail_known']" \
      "sub['devices'] == 20 and sub['publishers_ended']" \
      "sub['latency_us']['count'] == 4000 and sub['latency_us']['negative'] == 0" \
      "sub['driver'] == '$DRIVER'"
case_dir

echo "== $DRIVER 2: through a transformer hop"
T=conf2.$RANDOM
start sub env $(sub_env hop) IOTLAT_TOPIC=$T.out IOTLAT_DURATION=60s \
    IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
start tra env $(tra_env) IOTLAT_IN_TOPIC=$T IOTLAT_OUT_TOPIC=$T.out IOTLAT_DURATION=60s \
    IOTLAT_REPORT_JSON=$WORK/tra.json "$BIN/iotlat-transformer"
sleep "${SUB_SETTLE:-1}"
start pub env $(pub_env) IOTLAT_TOPIC=$T IOTLAT_DEVICES=10 IOTLAT_RATE=100 \
    IOTLAT_DURATION=2s IOTLAT_ENCODING=binary IOTLAT_PAYLOAD='bin-{{seq}}' \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub; wait_for tra; wait_for sub
check "pub['sent'] == 2000" \
      "tra['forwarded'] == 2010 and tra['input']['lost'] == 0" \
      "sub['received_unique'] == 2000 and sub['lost'] == 0 and sub['malformed'] == 0" \
      "[h['segment'] for h in sub['hops']] == ['publisher->hop1', 'hop1->subscriber']" \
      "sub['accounting']['balanced']"
case_dir

echo "== $DRIVER 3: broker down at start"
srv_stop
t0=$SECONDS rc=0
env $(down_env) IOTLAT_TOPIC=x IOTLAT_DURATION=1s timeout 60 "$BIN/${DOWN_BIN:-iotlat-subscriber}" \
    >"$WORK/down.out" 2>&1 || rc=$?
cat "$WORK/down.out"
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "expected a failure exit, got $rc"; exit 1; }
[ $((SECONDS - t0)) -le 30 ] || { echo "took $((SECONDS - t0)) s to fail"; exit 1; }
grep -q "${DOWN_EXPECT:?}" "$WORK/down.out" || { echo "message does not name '$DOWN_EXPECT'"; exit 1; }
[ "$(wc -l <"$WORK/down.out")" -le 3 ] || { echo "expected a short, clear error"; exit 1; }

echo "== $DRIVER 4: broker killed mid-run and restarted"
srv_start
T=conf4.$RANDOM
if declare -F srv_prepare_outage >/dev/null; then srv_prepare_outage; fi
start sub env $(sub_env "${OUTAGE_PATH:-direct}") IOTLAT_TOPIC=$T${OUTAGE_SUFFIX:-} \
    IOTLAT_DURATION=60s IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
sleep "${SUB_SETTLE:-1}"
start pub env $(pub_env) IOTLAT_TOPIC=$T IOTLAT_DEVICES=20 IOTLAT_RATE=100 \
    IOTLAT_DURATION=8s IOTLAT_GRACE=5s IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
sleep 2.5
srv_kill
sleep 1.5
srv_restart
wait_for pub; wait_for sub
cat "$WORK/sub.out"
check "pub['scheduled'] == 16000" \
      "sub['outages']['disconnects'] >= 1 and len(sub['outages']['windows']) >= 1" \
      "all(w['end_us'] > w['start_us'] for w in sub['outages']['windows'])" \
      "sub['received_unique'] + sub['lost'] == pub['scheduled']" \
      "sub['expected'] == pub['scheduled'] and sub['devices_with_fin'] == 20" \
      "sub['accounting']['balanced'] and sub['accounting']['devices_unbalanced'] == 0" \
      "sub['received_unique'] > 0 and sub['malformed'] == 0"
srv_stop
echo "conformance: $DRIVER passed"
