# shellcheck shell=bash
# Sourced by tests/integration/test_deploy_swarm_local_*.sh (after lib.sh):
# run one stack of compose/ with tests/deploy/swarm_local.py, as local
# processes with the replica counts and environment the files declare, and
# check the reports of every load replica.
#
# swarm_local_check STACK DRIVER [runner options...]
#   The publishers send for 5 s (IOTLAT_DURATION, which the stack files
#   interpolate) instead of the files' 60 s; everything else is the files'.
#   Checks: every service is either started or listed as skipped with its
#   reason; each publisher has its own topic; every transformer claimed a
#   distinct publisher topic and every subscriber a distinct transformer
#   output, so the replicas paired up 1-1-1; every subscriber's accounting
#   balances with nothing lost and the messages passed one transformer (two
#   latency segments);
#   the subscribers expected exactly what the publishers scheduled; and a
#   running plotter served /metrics.

# /usr/bin/python3 is the one Debian's python3-yaml is installed for.
SL_PY=/usr/bin/python3
[ -x "$SL_PY" ] || SL_PY=python3
"$SL_PY" -c 'import yaml' 2>/dev/null || { echo "PyYAML is missing for $SL_PY (make deps installs python3-yaml)"; exit 1; }
SL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

swarm_local_check() {
    local stack=$1 driver=$2 rc=0
    shift 2
    local t0=$SECONDS
    IOTLAT_DURATION=5s IOTLAT_RUN_ID="swarm-local-$stack" \
        timeout 150 "$SL_PY" "$SL_ROOT/tests/deploy/swarm_local.py" --stack "$stack" \
        --bin-dir "$BIN" --plugin-dir "$IOTLAT_PLUGIN_DIR" --reports "$WORK/reports" \
        --work "$WORK/run" --timeout 90 "$@" >"$WORK/runner.out" 2>&1 || rc=$?
    cat "$WORK/runner.out"
    echo "runner: exit $rc after $((SECONDS - t0)) s"
    [ $rc -eq 0 ] || return 1
    "$SL_PY" - "$WORK" "$SL_ROOT/compose" "$stack" "$driver" <<'PY'
import glob, json, os, re, sys
import yaml
work, compose, stack, driver = sys.argv[1:]
out = open(os.path.join(work, "runner.out")).read()
bad = 0
def ok(cond, what):
    global bad
    print(("ok   " if cond else "FAIL ") + what)
    bad += not cond

# Every service of the files is accounted for in the runner's plan.
services = {}
for f in ("common.yml", f"{stack}.yml"):
    services.update((yaml.safe_load(open(os.path.join(compose, f))) or {}).get("services") or {})
for name in services:
    m = re.search(r"^  %s +(server|iotlat|skipped):(.*)$" % re.escape(name), out, re.M)
    ok(m is not None and (m.group(1) != "skipped" or len(m.group(2).strip()) > 10),
       f"service {name}: {m.group(1) + ':' + m.group(2) if m else 'not listed'}")

def reports(role):
    return [json.load(open(f)) for f in sorted(glob.glob(os.path.join(work, "reports", f"{role}.*.json")))]
pubs, tras, subs = reports("publisher"), reports("transformer"), reports("subscriber")
want = {r: int(services[r]["deploy"]["replicas"]) for r in ("publisher", "transformer", "subscriber")}
ok((len(pubs), len(tras), len(subs)) == (want["publisher"], want["transformer"], want["subscriber"]),
   f"reports of {len(pubs)} publishers, {len(tras)} transformers, {len(subs)} subscribers "
   f"(deploy.replicas: {want})")
ok(all(r["driver"] == driver and r["run_id"] == f"swarm-local-{stack}" for r in pubs + tras + subs),
   f"every replica ran driver {driver} in run swarm-local-{stack}")
topics = [p["topic"] for p in pubs]
ok(len(set(topics)) == len(topics) and all(re.fullmatch(r"metro[./]\d+", t) for t in topics),
   f"each publisher has its own topic metro.{{id}}: {topics}")
claimed = sorted(t["store"]["claimed_topic"] for t in tras)
ok(claimed == sorted(topics), f"transformers claimed the publishers' topics 1-1: {claimed}")
pairs = {}
for s in subs:
    st = s["store"]["claimed_topic"]
    src = next((p for p in topics if st in (p + ".out", p + "/out")), None)
    pairs.setdefault(src, []).append(st)
ok(None not in pairs and len(pairs) == len(topics) and all(len(v) == 1 for v in pairs.values()),
   f"subscribers claimed the transformers' outputs 1-1: {pairs}")
for s in subs:
    a = s["accounting"]
    ok(a["balanced"] and a["tail_known"] and s["lost"] == 0 and s["expected"] > 0
       and s["received_unique"] == s["expected"] and len(s["hops"]) == 2,
       f"subscriber of {s['store']['claimed_topic']}: expected {s['expected']}, "
       f"received {s['received_unique']}, lost {s['lost']}, segments {len(s['hops'])}")
sched = sum(p["scheduled"] for p in pubs)
ok(sched > 0 and sum(s["expected"] for s in subs) == sched == sum(p["sent"] for p in pubs),
   f"the subscribers expected every message the publishers scheduled: {sched}")
if "plotter" in services and re.search(r"^  plotter +iotlat:", out, re.M):
    ok(re.search(r"plotter /metrics: HTTP 200, [1-9]", out) is not None,
       "the plotter served /metrics")
sys.exit(1 if bad else 0)
PY
}
