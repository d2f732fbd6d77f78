#!/usr/bin/env bash
# Per-device MQTT connections against a real Mosquitto that checks a password
# file of 200 users: device N logs in as devN with password pw-N (the
# templates IOTLAT_MQTT_USERNAME=dev%d and IOTLAT_MQTT_PASSWORD=pw-%d).
#
#  1. 200 devices connected up front (IOTLAT_MQTT_DEVICES=200) at
#     IOTLAT_MQTT_CONNECT_RATE=100 per second: the connections ramp up over
#     about 2 s (sampled from the kernel's TCP table), the broker sees 200
#     distinct users and client ids, and every message arrives;
#  2. 40 devices connected lazily on their first message, with
#     IOTLAT_MQTT_OFFLINE_BUFFER=true so the first messages wait for their
#     connection: every message arrives;
#  3. a device whose user is missing from the password file: open() fails
#     at once, naming the device, the URL and the user.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
for tool in mosquitto mosquitto_passwd; do
    command -v $tool >/dev/null || { echo "$tool is not installed"; exit 1; }
done
export IOTLAT_DRIVER=mqtt IOTLAT_PROGRESS=0 IOTLAT_LOG_LEVEL=info
PORT=$(free_port)
MQ_PID=
trap '[ -n "$MQ_PID" ] && kill $MQ_PID 2>/dev/null; cleanup' EXIT

# 200 device users plus the subscriber's, hashed in one go.
{ for i in $(seq 0 199); do echo "dev$i:pw-$i"; done; echo "reader:reader-pw"; } >"$WORK/passwd"
chmod 600 "$WORK/passwd"
mosquitto_passwd -U "$WORK/passwd"
cat >"$WORK/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
persistence false
user root
allow_anonymous false
password_file $WORK/passwd
log_dest file $WORK/mosquitto.log
log_type all
CONF
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.out" 2>&1 &
MQ_PID=$!
PIDS+=($MQ_PID)
python3 - $PORT <<'PY'
import socket, sys, time
end = time.time() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); break
    except OSError:
        if time.time() > end: sys.exit("mosquitto is not listening")
        time.sleep(0.05)
PY
export IOTLAT_MQTT_URL=tcp://127.0.0.1:$PORT
SUB_AUTH="IOTLAT_MQTT_USERNAME=reader IOTLAT_MQTT_PASSWORD=reader-pw"
DEV_AUTH="IOTLAT_MQTT_USERNAME=dev%d IOTLAT_MQTT_PASSWORD=pw-%d"

echo "== 1: 200 devices up front, ramped at 100 connections per second"
T=perdev.$RANDOM
start sub env $SUB_AUTH IOTLAT_TOPIC=$T IOTLAT_DURATION=40s IOTLAT_REPORT_JSON=$WORK/sub.json \
    "$BIN/iotlat-subscriber"
sleep 1
# Sample the broker's established connections every 50 ms while the
# publisher opens its 200.
python3 - $PORT 201 >"$WORK/ramp.txt" <<'PY' &
import sys, time
port, want = int(sys.argv[1]), int(sys.argv[2])
def established():
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for l in lines:
            p = l.split()
            if int(p[1].rsplit(":", 1)[1], 16) == port and p[3] == "01":
                n += 1
    return n
t0 = time.time()
while time.time() - t0 < 20:
    n = established()
    print(f"{time.time() - t0:.3f} {n}", flush=True)
    if n >= want: break
    time.sleep(0.05)
PY
SAMPLER=$!
# Python takes a moment to start: begin the ramp only once it samples.
for _ in $(seq 100); do [ -s "$WORK/ramp.txt" ] && break; sleep 0.05; done
start pub env $DEV_AUTH IOTLAT_MQTT_CONNECTIONS=per-device IOTLAT_MQTT_DEVICES=200 \
    IOTLAT_MQTT_CONNECT_RATE=100 IOTLAT_TOPIC=$T IOTLAT_DEVICES=200 IOTLAT_RATE=5 \
    IOTLAT_DURATION=2s IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub; wait_for sub
wait $SAMPLER || true
grep -h "connected to" "$WORK/pub.err" | sed 's/^/   /'
python3 - "$WORK/ramp.txt" <<'PY'
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
first = next(t for t, n in rows if n >= 2)  # the subscriber's + the first device's
if rows[0][1] >= 2:
    sys.exit("FAIL the sampler started after the ramp had begun")
full = next((t for t, n in rows if n >= 201), None)
mid = [n for t, n in rows if first + 0.9 <= t <= first + 1.1]
print(f"   ramp: first device at {first:.2f} s, all 200 at {full} s, "
      f"{mid[0] - 1 if mid else '?'} devices connected 1 s in")
ok = full is not None and full - first >= 1.5 and mid and 40 <= mid[0] - 1 <= 160
print(("ok  " if ok else "FAIL") + " 200 connections took about 2 s at 100 per second")
sys.exit(0 if ok else 1)
PY
users=$(grep -o "u'dev[0-9]*'" "$WORK/mosquitto.log" | sort -u | wc -l)
ids=$(grep -o "as iotlat-[^ ]*" "$WORK/mosquitto.log" | grep -v -- '-sub$' | sort -u | wc -l)
echo "   broker log: $users distinct device users, $ids distinct publisher client ids"
[ "$users" -eq 200 ] && [ "$ids" -eq 200 ] || { echo "FAIL expected 200 of each"; exit 1; }
check "pub['sent'] == 2000 and pub['send_failed'] == 0" \
      "sub['received_unique'] == 2000 and sub['lost'] == 0 and sub['devices'] == 200" \
      "sub['accounting']['balanced'] and sub['publishers_ended']"
rm -f "$WORK"/*.json

echo "== 2: 40 devices connected lazily, first messages buffered until connected"
T=lazy.$RANDOM
start sub env $SUB_AUTH IOTLAT_TOPIC=$T IOTLAT_DURATION=40s IOTLAT_REPORT_JSON=$WORK/sub.json \
    "$BIN/iotlat-subscriber"
sleep 1
start pub env $DEV_AUTH IOTLAT_MQTT_CONNECTIONS=per-device IOTLAT_MQTT_OFFLINE_BUFFER=true \
    IOTLAT_TOPIC=$T IOTLAT_DEVICES=40 IOTLAT_RATE=20 IOTLAT_DURATION=2s \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub; wait_for sub
check "pub['sent'] == 1600 and pub['send_failed'] == 0" \
      "sub['received_unique'] == 1600 and sub['lost'] == 0 and sub['devices'] == 40" \
      "sub['accounting']['balanced']"
rm -f "$WORK"/*.json

echo "== 3: a device the broker does not know: open() fails, naming it"
rc=0
env $DEV_AUTH IOTLAT_MQTT_CONNECTIONS=per-device IOTLAT_MQTT_DEVICES=201 \
    IOTLAT_MQTT_CONNECT_RATE=1000 IOTLAT_TOPIC=x IOTLAT_DEVICES=201 IOTLAT_DURATION=1s \
    timeout 60 "$BIN/iotlat-publisher" >"$WORK/bad.out" 2>&1 || rc=$?
sed 's/^/   /' "$WORK/bad.out"
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "FAIL expected a failure exit, got $rc"; exit 1; }
grep -qF "device 200: the broker at tcp://127.0.0.1:$PORT refused the credentials of user 'dev200'" \
    "$WORK/bad.out" || { echo "FAIL the message does not name device 200 and its user"; exit 1; }
if grep -q "pw-200" "$WORK/bad.out"; then echo "FAIL the password leaked"; exit 1; fi
echo "ok   exit $rc"
echo "test_mqtt_per_device: passed"
