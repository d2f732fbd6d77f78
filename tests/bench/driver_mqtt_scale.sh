#!/usr/bin/env bash
# Device scale of the MQTT driver: one iotlat-publisher holding thousands of
# per-device MQTT connections (IOTLAT_MQTT_CONNECTIONS=per-device) to Debian's
# Mosquitto on loopback, each device sending 1 msg/s, with one subscriber on
# an ordinary shared connection.  Runs, each on a fresh Mosquitto:
#   base      10 devices, QoS 0: the memory baseline
#   1000..    1000, 2500, 5000 and 10000 devices at QoS 1 (the driver's
#             default), IOTLAT_MQTT_CONNECT_RATE=2000
#   10000-qos0  10000 devices at QoS 0, at the default connect rate (500/s)
# and for each: the connect-time distribution, the time to bring every
# connection up, publisher and Mosquitto memory per connection, whether the
# publisher kept its schedule, messages delivered against sent, and whether
# every connection stayed up.
#
# How it measures:
# - connect time: a small LD_PRELOAD library (built here) wraps Paho's
#   MQTTAsync_connect and records, per call, when the driver issued it and
#   when Paho reported CONNACK (onSuccess) or a failure: what a device
#   sees, MQTT handshake included.  The driver itself is not changed.
# - connections up: `ss` counts the ESTABLISHED TCP connections to the
#   broker's port every 0.5 s (minus the subscriber's one).
# - memory: VmRSS from /proc of the publisher and of Mosquitto, sampled every
#   0.5 s; per connection = (RSS with N devices - RSS of the 10-device base
#   run) / (N - 10) for the publisher, (RSS while the N devices are connected
#   - RSS before the publisher started) / N for Mosquitto.
# - delivery: the publisher's and the subscriber's JSON reports.
# A publisher that falls behind its schedule still sends every scheduled
# message, however late, and while behind it does not react to SIGINT (see
# BENCHMARKS.md), so the runs expected to fall behind get short sending
# times (5000 devices 4 s, 10000 devices at QoS 1 2 s): the whole script
# stays near three minutes.
#
# Limits: the open-file limit is raised to min(hard limit, 65536) for
# Mosquitto and the publisher (the driver raises the publisher's soft limit
# to the hard one by itself); a run whose N does not fit is reported, not
# run.  Mosquitto gets max_connections -1.  IOTLAT_MQTT_CONNECT_TIMEOUT=60
# for the scale runs: open() waits N / CONNECT_RATE + CONNECT_TIMEOUT + 1 s,
# and the ramp runs slower than the requested rate (see BENCHMARKS.md).
#
# Prints the figures; a missed figure (a publisher behind schedule, an open()
# that fails) never fails the run, a crashed or hung process or a missing
# report does (exit 1).
# Usage: bash tests/bench/driver_mqtt_scale.sh   (after `make`; O=build-dir
# optional; MQTT_SCALE_MAX=N caps the device counts, e.g. 2000 for a quick run)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
O=${O:-.}
BIN=$ROOT/$O/bin
PLUGINS=$ROOT/$O/plugins
command -v mosquitto >/dev/null || { echo "bench: mosquitto is not installed" >&2; exit 1; }
command -v ss >/dev/null || { echo "bench: ss (iproute2) is not installed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench: python3 is required" >&2; exit 1; }
[ -x "$BIN/iotlat-publisher" ] && [ -x "$BIN/iotlat-subscriber" ] && [ -f "$PLUGINS/mqtt.so" ] ||
    { echo "bench: build first (make)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/iotlat-bench-mqtt-scale.XXXXXX)
# Every process is started and stopped (by pid) by the Python part below;
# the logs are kept when something broke.
cleanup() {
    local rc=$?
    if [ "$rc" = 0 ]; then rm -rf "$WORK"; else echo "bench: logs kept in $WORK" >&2; fi
}
trap cleanup EXIT

# Open files: as high as allowed (as root without CAP_SYS_RESOURCE the hard
# limit cannot be raised, only the soft one up to it).
WANT=65536
ulimit -Hn "$WANT" 2>/dev/null || true
HARD=$(ulimit -Hn)
if [ "$HARD" = unlimited ] || [ "$HARD" -ge "$WANT" ]; then NOFILE=$WANT; else NOFILE=$HARD; fi
ulimit -Sn "$NOFILE"

# Connect times as the device sees them: wrap MQTTAsync_connect and its
# onSuccess/onFailure callbacks, write "issued_us done_us ok|fail|refused"
# (CLOCK_MONOTONIC) per attempt to $MQTT_SCALE_CONNECT_LOG.  The driver is
# dlopen()ed with RTLD_LOCAL, so the real function is looked up in Paho's
# library itself rather than with RTLD_NEXT.
cat >"$WORK/connect_times.c" <<'C'
#define _GNU_SOURCE
#include <MQTTAsync.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
typedef int (*connect_fn)(MQTTAsync, const MQTTAsync_connectOptions *);
typedef struct {
    void *ctx;
    MQTTAsync_onSuccess *ok;
    MQTTAsync_onFailure *ko;
    MQTTAsync_onSuccess5 *ok5;
    MQTTAsync_onFailure5 *ko5;
    long long t0;
} wrap;
static int out = -1;
static long long now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}
static void rec(const wrap *w, const char *what)
{
    char line[96];
    int n = snprintf(line, sizeof line, "%lld %lld %s\n", w->t0, now_us(), what);
    if (out >= 0 && write(out, line, (size_t)n) != n)
        out = -1;
}
static void ok(void *c, MQTTAsync_successData *r) { wrap *w = c; rec(w, "ok"); if (w->ok) w->ok(w->ctx, r); free(w); }
static void ko(void *c, MQTTAsync_failureData *r) { wrap *w = c; rec(w, "fail"); if (w->ko) w->ko(w->ctx, r); free(w); }
static void ok5(void *c, MQTTAsync_successData5 *r) { wrap *w = c; rec(w, "ok"); if (w->ok5) w->ok5(w->ctx, r); free(w); }
static void ko5(void *c, MQTTAsync_failureData5 *r) { wrap *w = c; rec(w, "fail"); if (w->ko5) w->ko5(w->ctx, r); free(w); }
int MQTTAsync_connect(MQTTAsync h, const MQTTAsync_connectOptions *o)
{
    static connect_fn real;
    if (!real) {
        void *lib = dlopen("libpaho-mqtt3as.so.1", RTLD_NOW | RTLD_NOLOAD);
        real = lib ? (connect_fn)dlsym(lib, "MQTTAsync_connect") : NULL;
        const char *p = getenv("MQTT_SCALE_CONNECT_LOG");
        if (p)
            out = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (!real)
            return MQTTASYNC_FAILURE;
    }
    wrap *w = calloc(1, sizeof *w);
    if (!w)
        return real(h, o);
    *w = (wrap){o->context, o->onSuccess, o->onFailure, o->onSuccess5, o->onFailure5, now_us()};
    MQTTAsync_connectOptions c = *o;
    c.context = w;
    if (o->onSuccess) c.onSuccess = ok;
    if (o->onFailure) c.onFailure = ko;
    if (o->onSuccess5) c.onSuccess5 = ok5;
    if (o->onFailure5) c.onFailure5 = ko5;
    int rc = real(h, &c);
    if (rc != MQTTASYNC_SUCCESS) {
        rec(w, "refused");
        free(w);
    }
    return rc;
}
C
cc -O2 -Wall -shared -fPIC -o "$WORK/connect_times.so" "$WORK/connect_times.c" -ldl

timeout --kill-after=10 290 python3 - "$BIN" "$PLUGINS" "$WORK" "$NOFILE" "$HARD" \
    "${MQTT_SCALE_MAX:-10000}" <<'PY'
import json, os, re, signal, socket, statistics, subprocess, sys, time

BIN, PLUGINS, WORK, NOFILE, HARD, MAXN = sys.argv[1:7]
NOFILE, MAXN = int(NOFILE), int(MAXN)
SHIM = os.path.join(WORK, "connect_times.so")
TICK = 0.5
CLK = os.sysconf("SC_CLK_TCK")
broken = []  # crashes, hangs, missing reports: exit 1
# Stopped by the outer `timeout`: still stop what we started (the finally
# blocks in run()).
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

# name, devices, QoS, requested connect rate, connect timeout, sending time
# (s).  Above ~2500 devices at QoS 1 the publisher falls behind and drains
# its backlog at a rate that falls with N: short sending times there.
RUNS = [("base", 10, 0, 500, 10, 6)]
for n, hold in ((1000, 8), (2500, 8), (5000, 4)):
    if n < MAXN:
        RUNS.append((f"{n}-qos1", n, 1, 2000, 60, hold))
RUNS.append((f"{MAXN}-qos1", MAXN, 1, 2000, 60, 2 if MAXN > 5000 else 8))
RUNS.append((f"{MAXN}-qos0", MAXN, 0, 500, 60, 10))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def nofile(pid):
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return line.split()[3]
    except OSError:
        pass
    return "?"


def thread_ticks(pid):
    """{thread name: utime+stime ticks} summed per name, and the total."""
    out, total = {}, 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            name = s[s.index("(") + 1:s.rindex(")")]
            fields = s[s.rindex(")") + 2:].split()
            ticks = int(fields[11]) + int(fields[12])
            out[name] = out.get(name, 0) + ticks
            total += ticks
    except OSError:
        pass
    return out, total


def established(port):
    try:
        r = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
                           capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    return r.stdout.count("\n")


def listen_overflows():
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
        for a, b in zip(lines[::2], lines[1::2]):
            if a.startswith("TcpExt:"):
                d = dict(zip(a.split()[1:], b.split()[1:]))
                return int(d.get("ListenOverflows", 0))
    except (OSError, ValueError):
        pass
    return 0


def wait_port(port, limit=10):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_line(path, pattern, proc, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            with open(path, errors="replace") as f:
                if re.search(pattern, f.read()):
                    return True
        except OSError:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def stop(proc, name, sig=signal.SIGTERM, limit=15):
    """Stop a process we started; True if it ended by itself or on `sig`."""
    if proc.poll() is not None:
        return True
    proc.send_signal(sig)
    try:
        proc.wait(limit)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        broken.append(f"{name} did not stop within {limit} s of signal {int(sig)} (killed)")
        return False


def med(xs):
    return statistics.median(xs) if xs else None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else None


def base_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTLAT_")}
    env.update(IOTLAT_PLUGIN_DIR=PLUGINS, IOTLAT_DRIVER="mqtt")
    return env


def run(name, n, qos, rate, ctimeout, hold):
    r = {"name": name, "n": n, "qos": qos, "rate": rate, "hold": hold}
    if n + 64 > NOFILE:
        r["skipped"] = (f"{n} connections need more than the open-file limit of {NOFILE} "
                        f"(hard limit {HARD})")
        return r
    port = free_port()
    d = os.path.join(WORK, name)
    os.makedirs(d)
    with open(os.path.join(d, "mosquitto.conf"), "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "max_connections -1\nmax_queued_messages 1000000\n"
                f"log_dest file {d}/mosquitto.log\n"
                "log_type error\nlog_type warning\nlog_type notice\n"
                # Running as root, Mosquitto would switch to the mosquitto
                # user and lose access to the work directory.
                + ("user root\n" if os.geteuid() == 0 else ""))
    procs = []
    mq = subprocess.Popen(["mosquitto", "-c", os.path.join(d, "mosquitto.conf")],
                          stdin=subprocess.DEVNULL, stdout=open(os.path.join(d, "mosquitto.out"), "w"),
                          stderr=subprocess.STDOUT)
    procs.append(("mosquitto", mq))
    try:
        if not wait_port(port):
            broken.append(f"{name}: mosquitto did not listen on port {port}")
            return r
        r["mq_nofile"] = nofile(mq.pid)
        env = base_env()
        env.update(IOTLAT_MQTT_URL=f"tcp://127.0.0.1:{port}", IOTLAT_MQTT_QOS=str(qos),
                   IOTLAT_TOPIC=f"scale/{name}", IOTLAT_PROGRESS="0")
        sub_env = dict(env, IOTLAT_DURATION="200s",
                       IOTLAT_REPORT_JSON=os.path.join(d, "sub.json"))
        sub = subprocess.Popen([os.path.join(BIN, "iotlat-subscriber")], env=sub_env,
                               stdin=subprocess.DEVNULL,
                               stdout=open(os.path.join(d, "sub.out"), "w"),
                               stderr=open(os.path.join(d, "sub.err"), "w"))
        procs.append(("subscriber", sub))
        if not wait_line(os.path.join(d, "sub.err"), r"connected to", sub, 20):
            broken.append(f"{name}: the subscriber did not connect "
                          f"(see {d}/sub.err)")
            return r
        time.sleep(0.5)
        r["mq_rss_before"] = status(mq.pid, "VmRSS")
        lo0 = listen_overflows()

        pub_env = dict(env, IOTLAT_MQTT_CONNECTIONS="per-device", IOTLAT_MQTT_DEVICES=str(n),
                       IOTLAT_DEVICES=str(n), IOTLAT_RATE="1", IOTLAT_DURATION=f"{hold}s",
                       IOTLAT_MQTT_CONNECT_RATE=str(rate),
                       IOTLAT_MQTT_CONNECT_TIMEOUT=str(ctimeout),
                       IOTLAT_MQTT_CLIENT_ID="scale-%r-%d", IOTLAT_PROGRESS="5s",
                       IOTLAT_REPORT_JSON=os.path.join(d, "pub.json"),
                       LD_PRELOAD=SHIM, MQTT_SCALE_CONNECT_LOG=os.path.join(d, "connects.log"))
        perr = os.path.join(d, "pub.err")
        t_start = time.monotonic()
        pub = subprocess.Popen([os.path.join(BIN, "iotlat-publisher")], env=pub_env,
                               stdin=subprocess.DEVNULL,
                               stdout=open(os.path.join(d, "pub.out"), "w"),
                               stderr=open(perr, "w"))
        procs.append(("publisher", pub))
        # open() may take N / rate + timeout + 1 s; past that (and a margin)
        # the publisher hangs.
        open_limit = t_start + n / rate + ctimeout + 1 + 20
        t_send = None
        killed = False
        # (t, TCP connections up, publisher RSS, mosquitto RSS, publisher CPU
        # ticks by thread name, publisher ticks, mosquitto ticks, threads)
        samples = []
        r["pub_nofile"] = None
        next_tick = time.monotonic()
        while pub.poll() is None:
            now = time.monotonic()
            if t_send is None:
                with open(perr, errors="replace") as f:
                    if re.search(r"devices x [0-9.]+ msg/s", f.read()):
                        t_send = now
                if t_send is None and now > open_limit:
                    broken.append(f"{name}: the publisher's open() did not return in "
                                  f"{now - t_start:.0f} s (killed)")
                    pub.kill()
                    killed = True
                    break
            elif now > t_send + hold + max(60, hold * n / 250):
                # Far beyond what even a publisher draining a backlog at
                # 250 msg/s would need.
                broken.append(f"{name}: the publisher was still running "
                              f"{now - t_send:.0f} s after it started sending (killed)")
                pub.kill()
                killed = True
                break
            if r["pub_nofile"] is None:
                r["pub_nofile"] = nofile(pub.pid) if t_send else None
            by_thread, pt = thread_ticks(pub.pid)
            up = established(port)
            samples.append((now, None if up is None else up - 1, status(pub.pid, "VmRSS"),
                            status(mq.pid, "VmRSS"), by_thread, pt,
                            thread_ticks(mq.pid)[1], status(pub.pid, "Threads")))
            next_tick += TICK
            time.sleep(max(0.0, next_tick - time.monotonic()))
        t_end = time.monotonic()
        rc = pub.wait()
        r.update(t_start=t_start, t_send=t_send, t_end=t_end,
                 pub_rc=rc, samples=samples, listen_overflows=listen_overflows() - lo0)
        if rc < 0 and not killed:
            broken.append(f"{name}: the publisher died of signal {-rc}")
        with open(perr, errors="replace") as f:
            errs = [l.strip() for l in f if ": error:" in l]
        if errs:
            r["pub_error"] = errs[-1].split(": error: ", 1)[-1]
        # The subscriber ends by itself after every device's end marker,
        # which a failed or killed publisher did not send.
        try:
            sub.wait(8 if rc == 0 else 3)
        except subprocess.TimeoutExpired:
            stop(sub, f"{name}: subscriber", signal.SIGINT, 20)
        if sub.returncode is not None and sub.returncode < 0 and sub.returncode != -signal.SIGINT:
            broken.append(f"{name}: the subscriber died of signal {-sub.returncode}")
        if mq.poll() is not None:
            broken.append(f"{name}: mosquitto exited during the run (status {mq.returncode})")
        for f, key in (("pub.json", "pub"), ("sub.json", "sub")):
            p = os.path.join(d, f)
            if os.path.exists(p):
                with open(p) as fh:
                    r[key] = json.load(fh)
            elif key == "sub" or rc == 0:
                broken.append(f"{name}: no {key} report ({p})")
        cl = os.path.join(d, "connects.log")
        r["connects"] = []
        if os.path.exists(cl):
            with open(cl) as fh:
                for line in fh:
                    a, b, what = line.split()
                    r["connects"].append((int(a) / 1e6, int(b) / 1e6, what))
        try:
            with open(os.path.join(d, "mosquitto.log"), errors="replace") as fh:
                r["mq_log_errors"] = [l.strip() for l in fh if "rror" in l][:3]
        except OSError:
            r["mq_log_errors"] = []
        return r
    finally:
        for pname, p in reversed(procs):
            stop(p, f"{name}: {pname}", signal.SIGTERM, 20)


def summarize(r, base):
    """Derive the figures of one run from its samples and reports."""
    s = {}
    n = r["n"]
    cs = r.get("connects", [])
    oks = [(a, b) for a, b, w in cs if w == "ok"]
    s["attempts"], s["ok"] = len(cs), len(oks)
    s["failed"] = len(cs) - len(oks)
    if oks:
        dur = [(b - a) * 1e3 for a, b in oks]
        s["ct"] = [pct(dur, 0.5), pct(dur, 0.9), pct(dur, 0.99), max(dur)]
        first = min(x[0] for x in cs)
        s["issue_span"] = max(x[0] for x in cs) - first
        s["all_up"] = max(b for _, b in oks) - first
        s["attempt_rate"] = len(cs) / s["issue_span"] if s["issue_span"] > 0 else None
        allow = n / r["rate"] + 11
        if len(oks) >= n:
            s["default_fit"] = ("yes" if s["all_up"] <= allow
                                else f"no: {s['all_up']:.0f} s > {allow:.0f} s")
    if r.get("t_send"):
        s["open_s"] = r["t_send"] - r["t_start"]
    smp = r.get("samples", [])
    t_send = r.get("t_send")
    if t_send:
        # Sending lasts the schedule, or longer when the publisher is behind.
        sending = max(r["hold"], (r.get("pub") or {}).get("duration_s") or 0)
        stop_t = min(r["t_send"] + sending - 1, r["t_end"])
        win = [x for x in smp if t_send + 1 <= x[0] <= stop_t]
        first_after = [x for x in smp if x[0] >= t_send]
        if first_after:
            s["rss_open"] = first_after[0][2]
            s["mq_rss_open"] = first_after[0][3]
            s["threads"] = first_after[0][7]
        if win:
            ups = [x[1] for x in win if x[1] is not None]
            s["tcp_min"] = min(ups) if ups else None
            s["rss_hold"] = med([x[2] for x in win if x[2]])
            s["mq_rss_hold"] = med([x[3] for x in win if x[3]])
            dt = win[-1][0] - win[0][0]
            if dt > 0:
                s["mq_cpu"] = (win[-1][6] - win[0][6]) / CLK / dt * 100
                for key, thread in (("app_cpu", "iotlat-publishe"), ("snd_cpu", "MQTTAsync_send"),
                                    ("rcv_cpu", "MQTTAsync_rcv")):
                    a, b = (x[4].get(thread, 0) for x in (win[0], win[-1]))
                    s[key] = (b - a) / CLK / dt * 100
    if base and base.get("rss_hold") and s.get("rss_hold") and n > base["n"]:
        s["kb_conn"] = (s["rss_hold"] - base["rss_hold"]) / (n - base["n"])
        if s.get("rss_open") and base.get("rss_open"):
            s["kb_conn_open"] = (s["rss_open"] - base["rss_open"]) / (n - base["n"])
    if s.get("mq_rss_hold") and r.get("mq_rss_before"):
        s["mq_kb_conn"] = (s["mq_rss_hold"] - r["mq_rss_before"]) / n
    pub, sub = r.get("pub"), r.get("sub")
    if pub:
        s["sent"], s["send_failed"] = pub["sent"], pub["send_failed"]
        s["scheduled"], s["planned"] = pub["scheduled"], pub["planned"]
        s["achieved"] = pub["achieved_rate"]
        s["lag_p99"] = pub["send_lag_us"].get("p99")
        s["disconnects"] = pub.get("outages", {}).get("disconnects")
        s["on_schedule"] = (s["achieved"] >= 0.99 * n
                            and (s["lag_p99"] or 0) < 1e6)
    if sub:
        s["received"], s["lost"] = sub["received_unique"], sub["lost"]
        sl = sub.get("service_latency_us", {})
        s["lat"] = (sl.get("p50"), sl.get("p99"))
    s["n"] = n
    return s


def ms(x):
    return "-" if x is None else (f"{x / 1000:.1f} s" if x >= 10000 else f"{x:.0f} ms")


def us(x):
    if x is None:
        return "-"
    return f"{x / 1e6:.1f} s" if x >= 1e6 else (f"{x / 1e3:.1f} ms" if x >= 1e3 else f"{x:.0f} us")


def fmt(x, spec, unit="", none="-"):
    return none if x is None else format(x, spec) + unit


mosq_v = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout.splitlines()
print(f"mqtt device-scale benchmark ({mosq_v[0] if mosq_v else 'mosquitto'}, "
      f"{os.cpu_count()} CPUs, open files {NOFILE} (hard {HARD}), "
      f"load {os.getloadavg()[0]:.1f})")
print("one publisher, IOTLAT_MQTT_CONNECTIONS=per-device, every device 1 msg/s; "
      "one subscriber on a shared connection")
results, sums = {}, {}
base = None
for spec in RUNS:
    name = spec[0]
    print(f"  {name}: {spec[1]} devices, QoS {spec[2]}, IOTLAT_MQTT_CONNECT_RATE={spec[3]} ...",
          flush=True)
    r = run(*spec)
    results[name] = r
    if "skipped" in r:
        print(f"    not run: {r['skipped']}")
        continue
    s = summarize(r, base)
    sums[name] = s
    if name == "base":
        base = s
    if r.get("pub_error"):
        print(f"    publisher failed: {r['pub_error']}")
    for e in r.get("mq_log_errors", []):
        print(f"    mosquitto: {e}")

print()
print("1. connecting (per connection: MQTTAsync_connect -> CONNACK callback)")
print(f"   {'run':<12} {'conns':>6} {'fail':>5} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}"
      f" {'rate asked':>10} {'achieved':>9} {'all up':>8} {'open()':>8}  default timeout")
for name, s in sums.items():
    ct = s.get("ct", [None] * 4)
    print(f"   {name:<12} {s['ok']:>6} {s['failed']:>5} {ms(ct[0]):>8} {ms(ct[1]):>8} "
          f"{ms(ct[2]):>8} {ms(ct[3]):>8} {results[name]['rate']:>8}/s "
          f"{fmt(s.get('attempt_rate'), '.0f', '/s'):>9} {fmt(s.get('all_up'), '.1f', ' s'):>8} "
          f"{fmt(s.get('open_s'), '.1f', ' s', 'failed'):>8}  {s.get('default_fit', '-')}")
print("   (achieved = connect calls per second over the ramp; all up = first call to last")
print("    CONNACK; open() = publisher start to first message; default timeout: would")
print("    open() have waited long enough with IOTLAT_MQTT_CONNECT_TIMEOUT=10, i.e.")
print("    N / rate + 11 s, at the rate asked)")

print()
print("2. memory (VmRSS; per connection against the 10-device base run)")
print(f"   {'run':<12} {'publisher':>10} {'per conn':>9} {'at open':>9} {'threads':>7} "
      f"{'mosquitto':>10} {'per conn':>9} {'fd limits':>12}")
for name, s in sums.items():
    mb = lambda k: fmt(s[k] / 1024 if s.get(k) else None, ".1f", " MB")
    print(f"   {name:<12} {mb('rss_hold'):>10} {fmt(s.get('kb_conn'), '.2f', ' KB'):>9} "
          f"{fmt(s.get('kb_conn_open'), '.2f', ' KB'):>9} {fmt(s.get('threads'), 'd'):>7} "
          f"{mb('mq_rss_hold'):>10} {fmt(s.get('mq_kb_conn'), '.2f', ' KB'):>9} "
          f"{str(results[name].get('pub_nofile') or '-') + '/' + str(results[name].get('mq_nofile') or '-'):>12}")
print("   (publisher: median while sending; at open: first sample after open() returned;")
print("    mosquitto: median while sending minus before the publisher started, over N;")
print("    threads: the publisher's, Paho's send and receive threads included; fd limits:")
print("    open files allowed to the publisher / mosquitto)")

print()
print("3. sending at 1 msg/s per device, and delivery")
print(f"   {'run':<12} {'asked':>7} {'achieved':>9} {'lag p99':>9} {'sent':>7} {'failed':>6} "
      f"{'received':>8} {'lat p50':>8} {'lat p99':>8} {'up (min)':>8} {'drops':>5} "
      f"{'CPU: iotlat/Paho send/Paho rcv':>31} {'mosquitto':>9}")
for name, s in sums.items():
    if "achieved" not in s:
        continue
    lat = s.get("lat", (None, None))
    print(f"   {name:<12} {s['n']:>5}/s {s['achieved']:>7.0f}/s {us(s.get('lag_p99')):>9} "
          f"{s['sent']:>7} {s['send_failed']:>6} {fmt(s.get('received'), 'd'):>8} "
          f"{us(lat[0]):>8} {us(lat[1]):>8} {fmt(s.get('tcp_min'), 'd'):>8} "
          f"{fmt(s.get('disconnects'), 'd'):>5} "
          f"{'/'.join(fmt(s.get(k), '.0f', '%') for k in ('app_cpu', 'snd_cpu', 'rcv_cpu')):>31} "
          f"{fmt(s.get('mq_cpu'), '.0f', '%'):>9}")
print("   (lag = scheduled time to handed to Paho; lat = subscriber latency from the send")
print("    time; up (min) = fewest of the N TCP connections ESTABLISHED while sending;")
print("    drops = the driver's connection losses; CPU = share of one core while sending, of")
print("    the publisher's own threads, of Paho's two, and of mosquitto)")

print()
print("verdict:")
for name, s in sums.items():
    if name == "base":
        continue
    r, n = results[name], s["n"]
    if r.get("pub_error"):
        print(f"   {name}: BROKE: {r['pub_error']}")
        continue
    held = s.get("tcp_min") is not None and s["tcp_min"] >= n and not s.get("disconnects")
    words = [f"{n} connections {'held' if held else 'NOT all held'}"]
    if "achieved" in s:
        if s.get("on_schedule"):
            words.append(f"on schedule ({s['achieved']:.0f} msg/s)")
        else:
            words.append(f"BEHIND schedule: {s['achieved']:.0f} of {n} msg/s, "
                         f"send lag p99 {us(s.get('lag_p99'))}")
        if s.get("received") is not None:
            words.append(f"{s['received']} of {s['sent']} sent delivered")
    if r.get("listen_overflows"):
        words.append(f"{r['listen_overflows']} listen-queue overflows (host-wide counter)")
    print(f"   {name}: " + ", ".join(words))
for name, r in results.items():
    if "skipped" in r:
        print(f"   {name}: not run: {r['skipped']}")
if broken:
    print()
    for b in broken:
        print(f"bench: {b}")
    sys.exit(1)
PY
