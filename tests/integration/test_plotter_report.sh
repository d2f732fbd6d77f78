#!/usr/bin/env bash
# A picture without Grafana: after a run, `make report` (and the plotter with
# IOTLAT_PLOTTER_ONCE and IOTLAT_PLOTTER_PNG) reads the run's results from
# Redis once and renders the latency over time and the latency distribution
# with gnuplot.  The picture is a real PNG of the expected size, and the
# data files behind it hold every second of the run and the run's maximum.
# ONCE mode also writes the NDJSON documents of every record, and exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/plotter_lib.sh"
command -v gnuplot >/dev/null || { echo "gnuplot is not installed (make deps: gnuplot-nox)"; exit 1; }
cd "$(dirname "$0")/../.."
start_redis
RUN="report/run 1" # a run id that is not a file name
measured_run cell1 10 100 4s
measured_run cell2 10 100 4s
for n in pub_cell1 pub_cell2 sub_cell1 sub_cell2; do wait_for $n; done

start once env IOTLAT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" IOTLAT_RUN_ID="$RUN" \
    IOTLAT_PLOTTER_ONCE=true IOTLAT_PLOTTER_PNG="$WORK/pictures" \
    IOTLAT_PLOTTER_NDJSON="$WORK/docs.ndjson" "$BIN/iotlat-plotter"
wait_for once
cat "$WORK/once.err"

# make report: the same through the Makefile, as a user would run it.
make --no-print-directory report O="${O:-.}" SANITIZE="${SANITIZE:-}" REPORT_DIR="$WORK/made" \
    IOTLAT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" IOTLAT_RUN_ID="$RUN" >"$WORK/make.out" 2>&1 ||
    { cat "$WORK/make.out"; exit 1; }
tail -2 "$WORK/make.out"

for t in cell1 cell2; do
    redis-cli -p "$REDIS_PORT" xlen "iotlat:$RUN:rec:$t" >"$WORK/xlen_$t.txt"
done
python3 - "$WORK" <<'PY'
import json, struct, sys
work = sys.argv[1]
bad = 0
def check(ok, what):
    global bad
    print(('ok   ' if ok else 'FAIL ') + what)
    bad += not ok
sub = {t: json.load(open(f'{work}/sub_{t}.json')) for t in ('cell1', 'cell2')}
for d in ('pictures', 'made'):
    png = open(f'{work}/{d}/report_run_1-latency.png', 'rb').read()
    w, h = struct.unpack('>II', png[16:24])
    check(png[:8] == b'\x89PNG\r\n\x1a\n' and (w, h) == (1200, 1000) and len(png) > 20000,
          f'{d}: a {w}x{h} PNG of {len(png)} bytes')
rows = [l.split() for l in open(f'{work}/pictures/report_run_1-timeline.dat') if not l.startswith('#')]
span = max(s['last_receive_us'] for s in sub.values()) - min(s['first_receive_us'] for s in sub.values())
check(len(rows) >= span / 1e6 - 1, f'{len(rows)} seconds in the timeline for {span / 1e6:.1f} s of traffic')
check(sum(int(r[1]) for r in rows) == sum(s['received'] for s in sub.values()),
      'the timeline counts every message once')
dist = [l.split() for l in open(f'{work}/pictures/report_run_1-distribution.dat') if not l.startswith('#')]
mx = max(s['latency_us']['max'] for s in sub.values())
check(dist[-1][1] == '100' and abs(float(dist[-1][2]) - mx / 1000) < 0.001,
      f'the distribution ends at the run\'s maximum, {mx} us')
check(all(float(a[2]) <= float(b[2]) for a, b in zip(dist, dist[1:])), 'the distribution rises')
docs = [json.loads(l) for l in open(f'{work}/docs.ndjson')]
for t in sub:
    n = sum(1 for d in docs if d['iotlat']['topic'] == t)
    check(n == int(open(f'{work}/xlen_{t}.txt').read()), f'{t}: one document per record ({n})')
sys.exit(1 if bad else 0)
PY
