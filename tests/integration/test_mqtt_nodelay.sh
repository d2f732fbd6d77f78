#!/usr/bin/env bash
# The MQTT driver sets TCP_NODELAY on every socket Paho opens to the broker,
# including the ones Paho opens again after a reconnect.  Paho itself never
# sets it, and Nagle's algorithm with the broker's delayed ACKs would add a
# 23-40 ms tail to the latencies iotlat reports.
#
# The check reads the socket option from outside the running processes:
# pidfd_getfd(2) duplicates each of their broker sockets into this test, and
# getsockopt(TCP_NODELAY) must say 1 on every one (shared subscriber
# connection, five per-device publisher connections).  The same check on a
# run with IOTLAT_MQTT_TCP_NODELAY=false must find 0: proof that Paho leaves
# the option off and that the check can tell.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/../conformance/servers/mqtt.sh"
trap 'srv_stop >/dev/null 2>&1 || true; cleanup' EXIT
export IOTLAT_DRIVER=mqtt IOTLAT_PROGRESS=0 IOTLAT_MQTT_URL=tcp://127.0.0.1:$MQ_PORT

# nodelay PID WANT_SOCKETS WANT_VALUE: every TCP socket of PID's child (the
# iotlat binary under `timeout`, see start in lib.sh) connected to the broker
# port has TCP_NODELAY == WANT_VALUE, and there are WANT_SOCKETS of them
# (waits up to 10 s for them to appear, e.g. after a reconnect).  With a
# fourth argument "new", none of them may be a socket seen by the previous
# call for the same process: they must be the ones opened by the reconnect.
nodelay() {
    local child
    child=$(pgrep -P "$1" | head -n 1)
    [ -n "$child" ] || { echo "FAIL no process under pid $1"; return 1; }
    python3 - "$child" "$MQ_PORT" "$2" "$3" "${4:-}" "$WORK/inodes.$1" <<'PY'
import ctypes, os, socket, sys, time
pid, port, want_n, want_v = (int(a) for a in sys.argv[1:5])
must_be_new, seen_file = sys.argv[5] == "new", sys.argv[6]
old = set(open(seen_file).read().split()) if must_be_new else set()
libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_getfd = 438
pfd = os.pidfd_open(pid)
inodes = []
def scan():
    found = []
    inodes.clear()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError as e:
        sys.exit(f"FAIL pid {pid}: {e}")
    for name in names:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{name}")
            if not link.startswith("socket:"):
                continue
        except OSError:
            continue
        fd = libc.syscall(SYS_pidfd_getfd, pfd, int(name), 0)
        if fd < 0:
            sys.exit(f"pidfd_getfd failed: {os.strerror(ctypes.get_errno())} "
                     "(the test needs ptrace rights over its own children)")
        s = socket.socket(fileno=fd)
        try:
            if s.type == socket.SOCK_STREAM and s.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    if s.getpeername()[1] == port and link not in old:
                        found.append(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                        inodes.append(link)
                except OSError:
                    pass
        finally:
            s.close()
    return found
end = time.time() + 10
while True:
    found = scan()
    ok = len(found) == want_n and all((v != 0) == bool(want_v) for v in found)
    if ok or time.time() > end:
        break
    time.sleep(0.2)
open(seen_file, "w").write(" ".join(inodes))
print(f"{'ok  ' if ok else 'FAIL'} pid {pid}: {len(found)} broker sockets (want {want_n}{', all new' if must_be_new else ''}), "
      f"TCP_NODELAY {found} (want {want_v})")
sys.exit(0 if ok else 1)
PY
}

srv_start
for mode in on off; do
    flag=true want=1
    [ $mode = off ] && flag=false want=0
    echo "== TCP_NODELAY $mode"
    T=nodelay.$mode.$RANDOM
    start sub env IOTLAT_MQTT_TCP_NODELAY=$flag IOTLAT_TOPIC=$T IOTLAT_DURATION=60s \
        IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
    sleep 1
    start pub env IOTLAT_MQTT_TCP_NODELAY=$flag IOTLAT_MQTT_CONNECTIONS=per-device \
        IOTLAT_MQTT_DEVICES=5 IOTLAT_TOPIC=$T IOTLAT_DEVICES=5 IOTLAT_RATE=20 \
        IOTLAT_DURATION=8s IOTLAT_GRACE=5s IOTLAT_REPORT_JSON=$WORK/pub.json \
        "$BIN/iotlat-publisher"
    sleep 1.5
    nodelay "$PID_sub" 1 $want
    nodelay "$PID_pub" 5 $want
    if [ $mode = on ]; then
        echo "-- after the broker is killed and restarted: the new sockets too"
        srv_kill
        sleep 0.5
        srv_restart
        sleep 1
        nodelay "$PID_sub" 1 1 new
        nodelay "$PID_pub" 5 1 new
    fi
    wait_for pub; wait_for sub
    check "sub['received_unique'] > 0 and sub['malformed'] == 0" \
          "sub['accounting']['balanced']"
    python3 -c "import json; l=json.load(open('$WORK/sub.json'))['service_latency_us']; print('  service latency p50 %d us, p99 %d us, max %d us' % (l['p50'], l['p99'], l['max']))"
    rm -f "$WORK"/*.json
done
srv_stop
echo "test_mqtt_nodelay: passed"
