#!/usr/bin/env bash
# A real Prometheus scrapes iotlat-plotter every second during a short run.
# Afterwards histogram_quantile() over the scraped buckets agrees with the
# plotter's own exact quantiles within one bucket (the mapping in
# src/promexp.h), for all topics and each topic; every PromQL expression of
# the Grafana dashboard runs against the scraped data without an error and
# returns series; the dashboard's template variables find the run, the
# driver and the topics; and every iotlat metric the dashboard uses exists.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/plotter_lib.sh"
command -v prometheus >/dev/null || { echo "prometheus is not installed (make deps)"; exit 1; }
cd "$(dirname "$0")/../.."
DASHBOARD=$PWD/dashboards/grafana/iotlat-latency.json
start_redis
RUN=plotprom
PLOT=$(free_port)
PROM=$(free_port)
start_plotter plot "$PLOT" IOTLAT_PLOTTER_INTERVAL=250ms
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: iotlat-plotter
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['127.0.0.1:$PLOT']
EOF
start prom prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PROM" --log.level=warn
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PROM/-/ready" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PROM/-/ready" >/dev/null || { cat "$WORK/prom.err"; exit 1; }

T0=$(date +%s)
measured_run line_a 20 100 6s
measured_run line_b 10 50 6s
for n in pub_line_a pub_line_b sub_line_a sub_line_b; do wait_for $n; done
wait_received "$PLOT" "$(received_sum line_a line_b)"
# Two more scrapes of the final state (the plotter closes the last seconds
# of all topics once they are idle, about 3 s after the end).
sleep 5
T1=$(date +%s)
curl -s "http://127.0.0.1:$PLOT/metrics" >"$WORK/served.prom"

python3 - "$PROM" "$RUN" "$T0" "$T1" "$DASHBOARD" "$WORK" <<'PY'
import json, re, sys, urllib.parse, urllib.request
prom, run, t0, t1, dashboard, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
bad = 0
def check(ok, what):
    global bad
    print(('ok   ' if ok else 'FAIL ') + what)
    bad += not ok
def api(path, **params):
    url = f'http://127.0.0.1:{prom}/api/v1/{path}?' + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)
def instant(q):
    r = api('query', query=q, time=t1)
    assert r['status'] == 'success', (q, r)
    return r['data']['result']

targets = api('targets')['data']['activeTargets']
check(len(targets) == 1 and targets[0]['health'] == 'up', f'the plotter is scraped: {targets[0]["health"]} {targets[0]["lastError"]}')

# The bucket bounds as scraped.
les = sorted({float(s['metric']['le']) for s in instant(f'iotlat_e2e_latency_seconds_bucket{{run="{run}",topic="_all"}}')
              if s['metric']['le'] != '+Inf'})
check(len(les) == 62, f'{len(les)} finite buckets')
SLOT = 1 / 1024  # the histogram's slots are narrower than this fraction of their values
for topic in ('_all', 'line_a', 'line_b'):
    for q in ('0.5', '0.99'):
        exact = instant(f'iotlat_e2e_latency_quantile_seconds{{run="{run}",topic="{topic}",window="run",quantile="{q}"}}')
        est = instant(f'histogram_quantile({q}, sum by (le) (iotlat_e2e_latency_seconds_bucket{{run="{run}",topic="{topic}"}}))')
        if not exact or not est:
            check(False, f'{topic} q{q}: no data (exact {exact}, buckets {est})')
            continue
        e, h = float(exact[0]['value'][1]), float(est[0]['value'][1])
        # The bucket Prometheus interpolated in, and the plotter's value in it.
        k = next(i for i, le in enumerate(les) if h <= le)
        lo, hi = (les[k - 1] if k else 0.0), les[k]
        ok = lo * (1 - SLOT) <= e <= hi * (1 + SLOT)
        check(ok, f'{topic} q{q}: plotter {e * 1e6:.0f} us, histogram_quantile {h * 1e6:.0f} us, '
                  f'both in bucket ({lo * 1e6:.0f}, {hi * 1e6:.0f}] us')

# Every expression of the dashboard, with its variables set as Grafana
# would for this run.
d = json.load(open(dashboard))
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get('panels', []))
exprs = [(p['title'], t['expr']) for p in panels(d['panels']) for t in p.get('targets', [])]
check(len(exprs) >= 15, f'{len(exprs)} expressions in the dashboard')
def fill(e):
    e = e.replace('topic="$topic"', 'topic="line_a"')
    for var, val in (('$__rate_interval', '5s'), ('$__interval', '1s'), ('$run', run),
                     ('$driver', '.*'), ('$topic', '.*')):
        e = e.replace(var, val)
    return e
used = set()
for title, e in exprs:
    q = fill(e)
    used |= set(re.findall(r'\b(iotlat_[a-z0-9_]+)', q))
    r = api('query_range', query=q, start=t0, end=t1, step=1)
    if r.get('status') != 'success':
        check(False, f'{title}: {q}: {r.get("error")}')
        continue
    n = len(r['data']['result'])
    check(n > 0, f'{title}: {q} -> {n} series')

# The variables' queries (label_values(selector, label)) through the label API.
for v in d['templating']['list']:
    m = re.fullmatch(r'label_values\((.*),\s*(\w+)\)', v.get('query', '')) if v['type'] == 'query' else None
    if not m:
        continue
    sel, label = fill(m.group(1)), m.group(2)
    vals = api(f'label/{label}/values', **{'match[]': sel, 'start': t0, 'end': t1})['data']
    want = {'run': {run}, 'driver': {'zeromq'}, 'topic': {'line_a', 'line_b'}}[v['name']]
    check(want <= set(vals) and (v['name'] != 'topic' or '_all' not in vals),
          f'variable {v["name"]}: {sel} -> {vals}')

# Every metric the dashboard names is one the plotter serves.
served = set()
for line in open(f'{work}/served.prom'):
    if line.startswith('# TYPE '):
        name, typ = line.split()[2:4]
        served.add(name)
        if typ in ('histogram', 'summary'):
            served |= {name + '_bucket', name + '_sum', name + '_count'}
missing = used - served
check(not missing, f'dashboard metrics served: {sorted(used)}' + (f'; missing {sorted(missing)}' if missing else ''))
sys.exit(1 if bad else 0)
PY
stop_process plot
