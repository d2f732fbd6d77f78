#!/usr/bin/env bash
# A publisher that cannot keep up (asked for far more than any machine can
# send) still stops promptly on SIGTERM, as Kubernetes stops a pod: it ends
# the schedule, sends its end markers and writes a report whose counts add
# up.  A subscriber also receives a SIGINT and reports what it had.
. "$(dirname "$0")/lib.sh"
P1=$(free_port)
start sub env IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:$P1 IOTLAT_DURATION=60s IOTLAT_STOP_AT_END=false \
    IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
start pub env IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:$P1 IOTLAT_DEVICES=1000 IOTLAT_RATE=100000 \
    IOTLAT_DURATION=60s IOTLAT_GRACE=1s IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
sleep 2
t0=$SECONDS
pkill -TERM -P "$PID_pub"
wait_for pub
echo "publisher stopped $((SECONDS - t0)) s after SIGTERM"
[ $((SECONDS - t0)) -le 5 ] || { echo "publisher took too long to stop"; exit 1; }
sleep 0.5
pkill -INT -P "$PID_sub"
wait_for sub
check "pub['interrupted'] and 0 < pub['scheduled'] < pub['planned']" \
      "pub['sent'] + pub['send_failed'] == pub['scheduled']" \
      "pub['fin_sent'] + pub['fin_failed'] == 1000" \
      "sub['received'] > 0 and sub['accounting']['balanced']"
