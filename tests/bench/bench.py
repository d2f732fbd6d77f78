#!/usr/bin/env python3
"""Orchestrates the iotlat benchmarks and prints the summary table.

tests/bench/run.sh (that is, `make bench`) runs this script.  It exists
because the benchmarks are a sequence of small experiments, each of which
starts two or three processes on loopback, waits for them with a time limit,
reads their JSON reports and decides what to try next (the publisher's top
rate is found by a search); that logic is much clearer in Python than in
shell.  The measuring itself is done by the iotlat binaries and by the C
tools next to this file (zmq_raw: bare libzmq baselines and load generators;
bench_core: in-process cost of the per-message code).

The machine the benchmarks run on is small and shared, so every iotlat
figure is printed next to a baseline measured in the same run, and a missed
target never fails the run.  A crashed process, a missing or inconsistent
report, or a time limit reached does: the script then exits 1.
"""
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
O = os.environ.get("O", ".")
BIN = os.path.join(ROOT, O, "bin")
PLUGINS = os.path.join(ROOT, O, "plugins")
TOOLS = os.path.join(ROOT, O, "obj", "tests", "bench")
ZMQ_RAW = os.path.join(TOOLS, "zmq_raw")
BENCH_CORE = os.path.join(TOOLS, "bench_core")
WORK = tempfile.mkdtemp(prefix="iotlat-bench.")
T_START = time.monotonic()

TOPIC = "bench"
JSON_PAYLOAD = '{"t":21.5}'
BINARY_PAYLOAD = "x" * len(JSON_PAYLOAD)  # same body size for both encodings
DEVICES = 1000          # (a): the total rate is varied through the per-device rate
TRIAL_S = 2             # (a): length of one publisher trial
MAX_TRIALS = 7          # (a): trials per encoding and framing
START_RATE = 250000     # (a): first total rate tried
CEILING_RATE = 3000000  # (a): a rate beyond any publisher on this machine
FLOOD_COUNT = 2000000   # (b): messages per flood run
FLOOD_REPS = 3          # (b): runs per receiver; the median is reported
LAT_DEVICES, LAT_RATE, LAT_S = 100, 100, 5  # (d): 10 k msg/s for 5 s
BUDGET_S = 150          # prefix-framing searches are skipped if they start later
HARD_S = 225            # no new search trial starts after this


class BenchError(Exception):
    """Something is broken (not merely slow): the run must fail."""


_procs = []  # every process started, so that all are stopped on the way out


def log(msg):
    print(f"[{time.monotonic() - T_START:6.1f}s] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iotlat_env(**opts):
    """The environment for an iotlat binary: none of the caller's IOTLAT_*
    settings (unknown ones would be rejected, others would change the test),
    the built plugins, no progress lines, and the given options."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTLAT_")}
    env.update(IOTLAT_PLUGIN_DIR=PLUGINS, IOTLAT_PROGRESS="0", IOTLAT_TOPIC=TOPIC,
               IOTLAT_WAIT_READY="10s")
    env.update({k: str(v) for k, v in opts.items()})
    return env


class Proc:
    """A child process with its output in WORK/<name>.{out,err}."""

    def __init__(self, name, argv, env=None, timeout=60):
        self.name, self.timeout = name, timeout
        self.out = os.path.join(WORK, name + ".out")
        self.err = os.path.join(WORK, name + ".err")
        try:
            with open(self.out, "w") as o, open(self.err, "w") as e:
                self.p = subprocess.Popen(argv, stdout=o, stderr=e, env=env)
        except OSError as e:
            raise BenchError(f"{name}: cannot start {argv[0]}: {e}")
        self.t0 = time.monotonic()
        _procs.append(self.p)

    def wait(self):
        left = max(1.0, self.timeout - (time.monotonic() - self.t0))
        try:
            rc = self.p.wait(timeout=left)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise BenchError(f"{self.name} did not finish within {self.timeout}s"
                             f"{self.tail()}")
        if rc != 0:
            raise BenchError(f"{self.name} exited with status {rc}{self.tail()}")
        return self

    def tail(self):
        text = ""
        for f in (self.out, self.err):
            with open(f) as fh:
                lines = fh.read().splitlines()[-15:]
            text += "".join(f"\n    | {line}" for line in lines)
        return text

    def json(self):
        """The last line of stdout, which the C tools write as JSON."""
        with open(self.out) as fh:
            lines = [line for line in fh.read().splitlines() if line.startswith("{")]
        if not lines:
            raise BenchError(f"{self.name} printed no JSON result{self.tail()}")
        return json.loads(lines[-1])


def stop_all():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_busy_s():
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / CLK_TCK


def task_times(pid):
    """{tid: (seconds on a CPU, seconds waiting for one)} per thread of pid,
    from /proc/<pid>/task/<tid>/schedstat; {} once the process is gone."""
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                run, wait = fh.read().split()[:2]
            out[int(tid)] = (int(run) / 1e9, int(wait) / 1e9)
    except (OSError, ValueError):
        pass
    return out


def watch(main, others=()):
    """Waits for `main` while sampling where the CPUs went, and returns
    how long main's first thread waited for a CPU (as a fraction of the
    run) and how many cores processes other than ours kept busy meanwhile.
    On a shared two-core machine those two numbers explain most of a
    latency tail."""
    procs = (main,) + tuple(others)
    last = {p.name: {} for p in procs}
    t0, b0 = time.monotonic(), cpu_busy_s()
    t1, b1 = t0, b0
    while main.p.poll() is None and time.monotonic() - main.t0 < main.timeout:
        for p in procs:
            snap = task_times(p.p.pid)
            if snap:
                last[p.name] = snap
        t1, b1 = time.monotonic(), cpu_busy_s()
        time.sleep(0.05)
    main.wait()
    wall = max(t1 - t0, 1e-3)
    ours = sum(run for snap in last.values() for run, _ in snap.values())
    main_wait = last[main.name].get(main.p.pid, (0.0, 0.0))[1]
    return {"wall_s": wall, "main_wait": main_wait / wall,
            "others_cores": max(0.0, (b1 - b0 - ours) / wall)}


def cpu_note(w):
    return (f"[CPU: {w['main_wait'] * 100:.0f}% waiting for a core, others used "
            f"{w['others_cores']:.2f} cores]")


NOISE = []  # others_cores of every watched run, for the summary


def read_report(path, who):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as e:
        raise BenchError(f"{who}: report {path} missing or unreadable: {e}")


def fmt_rate(r):
    return f"{r:,.0f}" if r is not None else "-"


# ---- (a) the publisher's highest on-schedule rate ---------------------------

def lag_ok(pub):
    return pub["send_lag_us"]["p99"] <= 1000


def pub_trial(enc, framing, total, n, seconds=TRIAL_S):
    """One publisher run at `total` msg/s with a raw drain receiving."""
    port = free_port()
    rate = total // DEVICES
    payload = JSON_PAYLOAD if enc == "json" else BINARY_PAYLOAD
    scheduled = DEVICES * math.ceil(seconds * rate)
    tag = f"a-{enc}-{framing}-{n}".replace(" ", "-")
    drain = Proc(tag + "-drain",
                 [ZMQ_RAW, "drain", f"connect=tcp://127.0.0.1:{port}", f"topic={TOPIC}",
                  f"framing={framing}", f"expect={scheduled + DEVICES}", "idle_ms=1000",
                  "timeout_ms=40000"], timeout=50)
    report = os.path.join(WORK, tag + "-pub.json")
    pub = Proc(tag + "-pub", [os.path.join(BIN, "iotlat-publisher")],
               env=iotlat_env(IOTLAT_ZEROMQ_BIND=f"tcp://127.0.0.1:{port}",
                              IOTLAT_ZEROMQ_FRAMING=framing, IOTLAT_DEVICES=DEVICES,
                              IOTLAT_RATE=rate, IOTLAT_DURATION=f"{seconds}s",
                              IOTLAT_ENCODING=enc, IOTLAT_PAYLOAD=payload,
                              IOTLAT_SPIN="100us", IOTLAT_PUBLISHER_ID=7,
                              IOTLAT_REPORT_JSON=report), timeout=60)
    w = watch(pub, [drain])
    NOISE.append(w["others_cores"])
    d = drain.wait().json()
    p = read_report(report, pub.name)
    if p["scheduled"] != scheduled or p["sent"] + p["send_failed"] != p["scheduled"]:
        raise BenchError(f"{pub.name}: scheduled {p['scheduled']}, sent {p['sent']}, "
                         f"failed {p['send_failed']}; expected {scheduled} scheduled")
    delivered = d["received"] / max(1, p["sent"] + p["fin_sent"])
    head = len(TOPIC) + 1 if framing == "prefix" else 0
    ok = (p["achieved_rate"] >= 0.99 * total and lag_ok(p) and delivered >= 0.99)
    why = [reason for reason, bad in (("rate", p["achieved_rate"] < 0.99 * total),
                                      ("lag", not lag_ok(p)),
                                      ("delivery", delivered < 0.99)) if bad]
    name = f"{n}" if "ceiling" in str(n) else f"trial {n}"
    log(f"(a) {enc}/{framing} {name}: target {fmt_rate(total)} msg/s -> achieved "
        f"{fmt_rate(p['achieved_rate'])}, send lag p50 {p['send_lag_us']['p50']} us "
        f"p99 {p['send_lag_us']['p99']} us, delivered {100 * delivered:.1f}%: "
        f"{'on schedule' if ok else 'missed (' + ', '.join(why) + ')'} {cpu_note(w)}")
    return {"target": total, "ok": ok, "achieved": p["achieved_rate"],
            "lag_p50": p["send_lag_us"]["p50"], "lag_p99": p["send_lag_us"]["p99"],
            "delivered": delivered, "size": d["bytes_mean"] - head, "cpu": w,
            "why": why}


def search(enc, framing):
    """Doubles the total rate from START_RATE while trials pass, then bisects
    between the highest pass and the lowest failure, at most MAX_TRIALS
    trials, stopping once the two are within 10%."""
    lo = hi = None
    total = START_RATE
    trials = []
    for n in range(1, MAX_TRIALS + 1):
        if time.monotonic() - T_START > HARD_S:
            log(f"(a) {enc}/{framing}: search stopped, the time budget is used up")
            break
        t = pub_trial(enc, framing, total, n)
        if not t["ok"] and t["why"] == ["lag"]:
            # A lag tail is usually another process holding the core: one
            # retry at the same rate, and the better of the two counts.
            t2 = pub_trial(enc, framing, total, f"{n} retry")
            t = t2 if t2["ok"] or t2["lag_p99"] < t["lag_p99"] else t
        trials.append(t)
        if t["ok"]:
            lo = total if lo is None else max(lo, total)
        else:
            hi = total if hi is None else min(hi, total)
        if hi is None:
            total *= 2
        elif lo is None:
            total //= 2
            if total < 10000:
                break
        else:
            if hi <= lo * 1.1:
                break
            total = (lo + hi) // 2
        total = max(DEVICES, total // DEVICES * DEVICES)
        total = min(total, 16000000)
        if total in (t["target"] for t in trials):
            break
    return {"best": lo, "trials": trials}


def ceiling_vs_raw(enc, framing):
    """The publisher's ceiling next to the raw send loop's, alternating two
    runs of each so that both see the same share of a noisy machine; the
    better run of each is kept.  The ceiling trial asks for a rate no
    publisher here can keep: overloaded, it sends as fast as it can, and its
    achieved rate is that speed.  The raw loop sends messages of the size
    the drain measured in the publisher's run."""
    ceilings, raws = [], []
    for n in (1, 2):
        c = pub_trial(enc, framing, CEILING_RATE, f"ceiling trial {n}", seconds=1)
        ceilings.append(c)
        raws.append(raw_send(framing, round(c["size"]), n))
    return {"ceiling": max(c["achieved"] for c in ceilings), "raw": max(raws),
            "size": round(ceilings[0]["size"]), "ceiling_trials": ceilings,
            "raw_runs": raws}


def raw_send(framing, size, n):
    """One run of the raw libzmq send loop with the given message size and
    framing, into a raw drain; returns its send rate."""
    port = free_port()
    tag = f"a-raw-{framing}-{size}-{n}"
    drain = Proc(tag + "-drain",
                 [ZMQ_RAW, "drain", f"connect=tcp://127.0.0.1:{port}",
                  f"topic={TOPIC}", f"framing={framing}", "idle_ms=3000",
                  "timeout_ms=40000"], timeout=50)
    send = Proc(tag + "-send",
                [ZMQ_RAW, "raw-send", f"bind=tcp://127.0.0.1:{port}", f"topic={TOPIC}",
                 f"framing={framing}", f"size={size}", f"seconds={TRIAL_S}"],
                timeout=60)
    w = watch(send, [drain])
    NOISE.append(w["others_cores"])
    s = send.json()
    d = drain.wait().json()
    if d["received"] != s["sent"]:
        raise BenchError(f"{tag}: sent {s['sent']} but the drain received "
                         f"{d['received']} (the sender does not drop)")
    log(f"(a) raw libzmq send loop, {framing}, {size} B, run {n}: "
        f"{fmt_rate(s['send_rate'])} msg/s, all delivered {cpu_note(w)}")
    return s["send_rate"]


# ---- (b) subscriber receive rate ----------------------------------------------

def flood(enc, receiver, n):
    """FLOOD_COUNT pre-encoded messages, sent as fast as the receiver takes
    them (the sender blocks instead of dropping), into a raw drain or the
    iotlat subscriber.  Returns the receiver's rate (received / time from
    first to last arrival)."""
    port = free_port()
    tag = f"b-{enc}-{receiver}-{n}"
    payload = JSON_PAYLOAD if enc == "json" else BINARY_PAYLOAD
    if receiver == "raw":
        rx = Proc(tag + "-drain",
                  [ZMQ_RAW, "drain", f"connect=tcp://127.0.0.1:{port}", f"topic={TOPIC}",
                   f"expect={FLOOD_COUNT + DEVICES}", "idle_ms=2000",
                   "timeout_ms=60000"], timeout=70)
    else:
        report = os.path.join(WORK, tag + "-sub.json")
        rx = Proc(tag + "-sub", [os.path.join(BIN, "iotlat-subscriber")],
                  env=iotlat_env(IOTLAT_ZEROMQ_CONNECT=f"tcp://127.0.0.1:{port}",
                                 IOTLAT_DURATION="60s", IOTLAT_GRACE="1s",
                                 IOTLAT_REPORT_JSON=report), timeout=70)
    tx = Proc(tag + "-flood",
              [ZMQ_RAW, "flood-send", f"bind=tcp://127.0.0.1:{port}", f"topic={TOPIC}",
               f"encoding={enc}", f"payload={payload}", f"count={FLOOD_COUNT}",
               f"devices={DEVICES}"], timeout=70)
    w = watch(rx, [tx])
    NOISE.append(w["others_cores"])
    tx.wait()
    if receiver == "raw":
        d = rx.json()
        if d["received"] != FLOOD_COUNT + DEVICES:
            raise BenchError(f"{rx.name}: received {d['received']} of "
                             f"{FLOOD_COUNT + DEVICES}")
        rate = d["receive_rate"]
    else:
        s = read_report(report, rx.name)
        if (s["received"] != FLOOD_COUNT or s["lost"] or s["malformed"]
                or not s["publishers_ended"]):
            raise BenchError(f"{rx.name}: received {s['received']} of {FLOOD_COUNT}, "
                             f"lost {s['lost']}, malformed {s['malformed']}, "
                             f"ended {s['publishers_ended']}")
        rate = s["receive_rate"]
    log(f"(b) {enc} flood into {'raw drain' if receiver == 'raw' else 'iotlat-subscriber'}"
        f", run {n}: {fmt_rate(rate)} msg/s {cpu_note(w)}")
    return rate


# ---- (c) in-process costs ------------------------------------------------------

def core(*args):
    p = Proc("c-" + "-".join(args[:2]), [BENCH_CORE, *args], timeout=120)
    return p.wait().json()


# ---- (d) latency at 10 k msg/s -------------------------------------------------

def latency_iotlat(n):
    port = free_port()
    report = os.path.join(WORK, f"d-sub-{n}.json")
    sub = Proc(f"d-sub-{n}", [os.path.join(BIN, "iotlat-subscriber")],
               env=iotlat_env(IOTLAT_ZEROMQ_CONNECT=f"tcp://127.0.0.1:{port}",
                              IOTLAT_DURATION="60s", IOTLAT_REPORT_JSON=report),
               timeout=70)
    pub = Proc(f"d-pub-{n}", [os.path.join(BIN, "iotlat-publisher")],
               env=iotlat_env(IOTLAT_ZEROMQ_BIND=f"tcp://127.0.0.1:{port}",
                              IOTLAT_DEVICES=LAT_DEVICES, IOTLAT_RATE=LAT_RATE,
                              IOTLAT_DURATION=f"{LAT_S}s", IOTLAT_ENCODING="json",
                              IOTLAT_PAYLOAD=JSON_PAYLOAD, IOTLAT_SPIN="100us",
                              IOTLAT_PUBLISHER_ID=7), timeout=60)
    w = watch(pub, [sub])
    NOISE.append(w["others_cores"])
    sub.wait()
    s = read_report(report, sub.name)
    expected = LAT_DEVICES * LAT_RATE * LAT_S
    log(f"(d) iotlat run {n}: p50/p99 from intended {s['latency_us']['p50']}/"
        f"{s['latency_us']['p99']} us, from sent {s['service_latency_us']['p50']}/"
        f"{s['service_latency_us']['p99']} us {cpu_note(w)}")
    if s["received_unique"] + s["lost"] != expected or s["received"] == 0:
        raise BenchError(f"d-sub: received {s['received_unique']} + lost {s['lost']} "
                         f"!= {expected}")
    s["cpu"] = w
    return s


def latency_raw(size, n):
    port = free_port()
    rx = Proc(f"d-raw-recv-{n}", [ZMQ_RAW, "latency-recv", f"connect=tcp://127.0.0.1:{port}",
                             f"topic={TOPIC}", "timeout_ms=40000"], timeout=50)
    tx = Proc(f"d-raw-send-{n}", [ZMQ_RAW, "paced-send", f"bind=tcp://127.0.0.1:{port}",
                             f"topic={TOPIC}", f"size={size}",
                             f"rate={LAT_DEVICES * LAT_RATE}", f"seconds={LAT_S}",
                             "spin_us=100"], timeout=60)
    w = watch(tx, [rx])
    NOISE.append(w["others_cores"])
    r = rx.wait().json()
    r["cpu"] = w
    log(f"(d) raw libzmq run {n} ({size} B): p50/p99 {r['latency_us']['p50']}/"
        f"{r['latency_us']['p99']} us {cpu_note(w)}")
    if r["latency_us"]["count"] != LAT_DEVICES * LAT_RATE * LAT_S:
        raise BenchError(f"d-raw-recv: recorded {r['latency_us']['count']} latencies")
    return r


# ---- the run ---------------------------------------------------------------------

def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores, {model}, Linux {platform.release()}, "
            f"load average {os.getloadavg()[0]:.2f} at start")


def main():
    for f in (os.path.join(BIN, "iotlat-publisher"), os.path.join(BIN, "iotlat-subscriber"),
              os.path.join(PLUGINS, "zeromq.so"), ZMQ_RAW, BENCH_CORE):
        if not os.access(f, os.X_OK if not f.endswith(".so") else os.R_OK):
            raise BenchError(f"{f} is missing: build with `make build-tests` first")
    log(f"machine: {machine()}")
    log(f"work directory (logs and reports): {WORK}")
    res = {"machine": machine()}

    # (c) first: it takes seconds and needs no network.
    hist = core("hist", "50000000")
    meas = {enc: core("meas", enc, JSON_PAYLOAD if enc == "json" else BINARY_PAYLOAD,
                      str(FLOOD_COUNT)) for enc in ("binary", "json")}
    sleep = core("sleep")
    log(f"(c) il_hist_record {hist['ns_per_record']:.2f} ns (loop and call alone "
        f"{hist['ns_loop_and_call']:.2f} ns); il_meas_message binary "
        f"{meas['binary']['ns_per_message']:.1f} ns, json "
        f"{meas['json']['ns_per_message']:.1f} ns")
    res["c"] = {"hist": hist, "meas": meas, "sleep": sleep}

    # (d) latency, while the machine is still as quiet as it gets.
    size_d = Proc("d-msgsize", [ZMQ_RAW, "msgsize", "encoding=json",
                                f"payload={JSON_PAYLOAD}", "pub=7", "dev=50",
                                "seq=250"]).wait().json()["size"]
    # Two runs of each, alternating; the run with the lower p99 of each is
    # reported, since a latency tail here mostly measures other processes.
    subs, raws = [], []
    for n in (1, 2):
        subs.append(latency_iotlat(n))
        raws.append(latency_raw(size_d, n))
    sub = min(subs, key=lambda r: r["latency_us"]["p99"])
    raw = min(raws, key=lambda r: r["latency_us"]["p99"])
    res["d"] = {"size": size_d, "iotlat": {k: sub[k] for k in
                                           ("latency_us", "service_latency_us",
                                            "send_lag_us", "received", "lost",
                                            "cpu")},
                "raw": raw, "iotlat_runs": [{k: r[k] for k in ("latency_us",
                                                                "service_latency_us",
                                                                "cpu")} for r in subs],
                "raw_runs": raws}

    # (b) subscriber receive rate, raw and iotlat runs interleaved.
    res["b"] = {}
    for enc in ("binary", "json"):
        rates = {"raw": [], "iotlat": []}
        for n in range(1, FLOOD_REPS + 1):
            for rx in ("raw", "iotlat"):
                rates[rx].append(flood(enc, rx, n))
        res["b"][enc] = {k: statistics.median(v) for k, v in rates.items()}
        res["b"][enc]["runs"] = rates

    # (a) the publisher's top on-schedule rate.
    res["a"] = {}
    for framing in ("multipart", "prefix"):
        if framing == "prefix" and time.monotonic() - T_START > BUDGET_S:
            # Everything asked for is measured with multipart framing; the
            # prefix variant is the optional extra.
            log("(a) prefix framing skipped: the time budget is used up")
            continue
        for enc in ("binary", "json"):
            s = ceiling_vs_raw(enc, framing)
            s.update(search(enc, framing))
            res["a"][f"{enc}/{framing}"] = s

    res["others_cores_mean"] = statistics.mean(NOISE) if NOISE else 0.0
    with open(os.path.join(WORK, "results.json"), "w") as fh:
        json.dump(res, fh, indent=1)
    summary(res)


def summary(res):
    rows = []

    def row(metric, iot, raw, ratio, target, met):
        rows.append((metric, iot, raw, ratio, target,
                     "-" if met is None else ("met" if met else "MISSED")))

    def ratio(a, b):
        return f"{a / b:.2f}" if a and b else "-"

    for key, s in res["a"].items():
        enc = key.split("/")[0]
        goal = 1000000 if enc == "binary" else 500000
        best = s["best"]
        row(f"(a) publisher on schedule, {key}", fmt_rate(best),
            fmt_rate(s["raw"]), ratio(best, s["raw"]), f">= {goal:,} msg/s",
            best is not None and best >= goal)
        row(f"    publisher ceiling (overloaded), {key}", fmt_rate(s["ceiling"]),
            fmt_rate(s["raw"]), ratio(s["ceiling"], s["raw"]), "-", None)
    for enc, b in res["b"].items():
        row(f"(b) subscriber receive rate, {enc}", fmt_rate(b["iotlat"]),
            fmt_rate(b["raw"]), ratio(b["iotlat"], b["raw"]), ">= 1,000,000 msg/s",
            b["iotlat"] >= 1000000)
    for enc, m in res["c"]["meas"].items():
        row(f"(b) in-process decode+record, {enc}", fmt_rate(m["rate"]), "-", "-",
            ">= 1,000,000 msg/s", m["rate"] >= 1000000)
    h = res["c"]["hist"]
    row("(c) il_hist_record", f"{h['ns_per_record']:.2f} ns",
        f"{h['ns_loop_and_call']:.2f} ns (empty call)", "-", "< 20 ns",
        h["ns_per_record"] < 20)
    for enc, m in res["c"]["meas"].items():
        row(f"(c) il_meas_message, {enc}", f"{m['ns_per_message']:.1f} ns", "-", "-",
            "(context)", None)
    row("(c) il_sleep_until_us, deadline past", f"{res['c']['sleep']['ns_per_call']:,.0f} ns",
        "-", "-", "(context)", None)
    d = res["d"]
    li, ls, lr = d["iotlat"]["latency_us"], d["iotlat"]["service_latency_us"], \
        d["raw"]["latency_us"]
    rs = d["raw"]["service_latency_us"]
    row("(d) latency p50, from intended time", f"{li['p50']} us", f"{lr['p50']} us",
        f"{li['p50'] - lr['p50']:+d} us", "-", None)
    row("(d) latency p99, from intended time", f"{li['p99']} us", f"{lr['p99']} us",
        f"{li['p99'] - lr['p99']:+d} us", "<= raw + 20 us", li["p99"] - lr["p99"] <= 20)
    row("(d) latency p50, from sent time", f"{ls['p50']} us", f"{rs['p50']} us",
        f"{ls['p50'] - rs['p50']:+d} us", "-", None)
    row("(d) latency p99, from sent time", f"{ls['p99']} us", f"{rs['p99']} us",
        f"{ls['p99'] - rs['p99']:+d} us", "-", None)

    head = ("benchmark", "iotlat", "raw libzmq", "iotlat/raw", "target", "result")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = "  ".join("-" * w for w in widths)
    print()
    print(f"iotlat benchmark summary - {res['machine']}")
    print("(a) on schedule = achieved rate >= 99% of target, send lag p99 <= 1 ms and "
          ">= 99% of the messages\n    reached a raw drain receiver; "
          f"{DEVICES} devices, {TRIAL_S} s trials (a trial missing only on lag is "
          f"retried once), body {len(JSON_PAYLOAD)} B;\n    ceiling = achieved rate "
          f"when asked for {CEILING_RATE:,} msg/s; raw = libzmq XPUB send loop, same "
          "size and framing,\n    never dropping (best of 2 each).  (b) medians of "
          f"{FLOOD_REPS} runs.  (d) best p99 of 2 runs each; differences are iotlat "
          "minus raw.")
    print(line)
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))
        if r is head:
            print(line)
    print(line)
    print(f"Other processes kept {res['others_cores_mean']:.2f} of "
          f"{os.cpu_count()} cores busy on average during the networked runs.")
    waits = [t["cpu"]["main_wait"] for s in res["a"].values() for t in s["trials"]]
    if waits:
        print(f"(a) In the search trials the publisher's thread waited for a core "
              f"{100 * statistics.mean(waits):.0f}% of the time on average: a send lag "
              "p99 above 1 ms there\n    is mostly time spent off the CPU.")
    if lr["p99"] > 1000:
        print("(d) The raw baseline's own p99 is above 1 ms, so the p99 comparison "
              "measures CPU contention\n    more than iotlat; the p50 rows are the "
              "telling ones.")
    print(f"{sum(r[5] == 'met' for r in rows)} targets met, "
          f"{sum(r[5] == 'MISSED' for r in rows)} missed; "
          f"{time.monotonic() - T_START:.0f} s; details in {WORK}/results.json")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        stop_all()
