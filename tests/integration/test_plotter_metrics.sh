#!/usr/bin/env bash
# iotlat-plotter follows a live run of two topics in a real Redis: its
# /metrics output passes `promtool check metrics` while the run goes on and
# at the end; its totals and its exact percentiles equal the subscribers' own
# reports (the same histograms, merged); IOTLAT_PLOTTER_TOPICS caps the
# per-topic series without touching the totals; and the NDJSON documents
# cover every per-second record, once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/plotter_lib.sh"
command -v promtool >/dev/null || { echo "promtool is not installed (make deps: prometheus)"; exit 1; }
start_redis
RUN=plotmetrics
P1=$(free_port)
P2=$(free_port)
start_plotter plot "$P1" IOTLAT_PLOTTER_TOPICS=all IOTLAT_PLOTTER_NDJSON="$WORK/docs.ndjson" \
    IOTLAT_PLOTTER_INTERVAL=500ms
start_plotter capped "$P2" IOTLAT_PLOTTER_TOPICS=1

# Nothing read yet: the endpoint answers, with no topics.
curl -s "http://127.0.0.1:$P1/metrics" >"$WORK/empty.prom"
promtool check metrics <"$WORK/empty.prom"
grep -q "^iotlat_topics{run=\"$RUN\"} 0$" "$WORK/empty.prom"

measured_run plant1 10 100 4s
measured_run plant2 5 50 4s
# While the run goes on: as soon as both topics have records.
for _ in $(seq 100); do
    curl -s "http://127.0.0.1:$P1/metrics" >"$WORK/mid.prom"
    grep -q 'topic="plant1"' "$WORK/mid.prom" && grep -q 'topic="plant2"' "$WORK/mid.prom" && break
    sleep 0.1
done
kill -0 "$PID_pub_plant1" || { echo "FAIL the run ended before the plotter showed both topics"; exit 1; }
echo "mid-run: $(grep -c . "$WORK/mid.prom") lines"
promtool check metrics <"$WORK/mid.prom"

for n in pub_plant1 pub_plant2 sub_plant1 sub_plant2; do wait_for $n; done
total=$(received_sum plant1 plant2)
wait_received "$P1" "$total"
wait_received "$P2" "$total"
sleep 1.5 # the seconds of all topics close once both topics are idle
curl -s "http://127.0.0.1:$P1/metrics" >"$WORK/final.prom"
curl -s "http://127.0.0.1:$P2/metrics" >"$WORK/capped.prom"
promtool check metrics <"$WORK/final.prom"
promtool check metrics <"$WORK/capped.prom"
echo "ok   promtool check metrics: empty, mid-run and final output"

# The other paths of the endpoint.
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/nothing")" = 404 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$P1/metrics")" = 405 ]
ctype=$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$P1/metrics")
[ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ] || { echo "content type $ctype"; exit 1; }

for t in plant1 plant2; do
    redis-cli -p "$REDIS_PORT" xlen "iotlat:$RUN:rec:$t" >"$WORK/xlen_$t.txt"
done

python3 - "$WORK" "$RUN" <<'PY'
import json, math, re, sys
work, run = sys.argv[1], sys.argv[2]
def parse(path):
    m = {}
    types = {}
    for line in open(path):
        if line.startswith('# TYPE'):
            _, _, name, t = line.split()
            types[name] = t
            continue
        if line.startswith('#') or not line.strip():
            continue
        series, value = line.rsplit(' ', 1)
        m[series] = float(value)
    return m, types
m, types = parse(f'{work}/final.prom')
capped, _ = parse(f'{work}/capped.prom')
sub = {t: json.load(open(f'{work}/sub_{t}.json')) for t in ('plant1', 'plant2')}
bad = 0
def check(ok, what):
    global bad
    print(('ok   ' if ok else 'FAIL ') + what)
    bad += not ok
def s(name, topic, **extra):
    labels = f'run="{run}",driver="zeromq",topic="{topic}"'
    for k, v in extra.items():
        labels += f',{k}="{v}"'
    return m.get(f'{name}{{{labels}}}')

check(types.get('iotlat_messages_received_total') == 'counter', 'received is a counter')
check(types.get('iotlat_messages_lost') == 'gauge', 'lost is a gauge')
check(types.get('iotlat_e2e_latency_seconds') == 'histogram', 'latency is a histogram')
check(types.get('iotlat_e2e_latency_quantile_seconds') == 'summary',
      'quantiles are a summary (promtool allows a quantile label on nothing else)')
total = sum(x['received'] for x in sub.values())
check(s('iotlat_messages_received_total', '_all') == total, f'all topics received = {total}')
check(s('iotlat_e2e_latency_seconds_count', '_all') == total, 'histogram count = received')
check(s('iotlat_e2e_latency_seconds_bucket', '_all', le='+Inf') == total, '+Inf bucket = received')
check(m.get(f'iotlat_topics{{run="{run}"}}') == 2, 'two topics')
for t, r in sub.items():
    check(s('iotlat_messages_received_total', t) == r['received'], f'{t}: received {r["received"]}')
    check(s('iotlat_messages_lost', t) == r['lost'], f'{t}: lost {r["lost"]}')
    check(s('iotlat_messages_duplicates_total', t) == r['duplicates'], f'{t}: duplicates')
    check(s('iotlat_devices', t) == r['devices'], f'{t}: devices')
    # The plotter merged the per-second histograms; the subscriber its whole
    # run: the same counters, so the same percentiles to the microsecond.
    for dist, key in (('e2e_latency', 'latency_us'), ('service_latency', 'service_latency_us'),
                      ('send_lag', 'send_lag_us')):
        for q, k in (('0.5', 'p50'), ('0.9', 'p90'), ('0.99', 'p99'), ('0.999', 'p999'), ('1', 'max')):
            v = s(f'iotlat_{dist}_quantile_seconds', t, window='run', quantile=q)
            want = r[key][k]
            check(v is not None and round(v * 1e6) == want,
                  f'{t}: {dist} q{q} = {want} us (plotter {None if v is None else round(v * 1e6)})')
    b = s('iotlat_clock_offset_bound_seconds', t)
    check(b is not None and 0 <= b < 0.01, f'{t}: clock-offset bound known ({b})')
# All topics: counts add up, max is the larger max, p50 lies between.
mx = s('iotlat_e2e_latency_quantile_seconds', '_all', window='run', quantile='1')
check(round(mx * 1e6) == max(r['latency_us']['max'] for r in sub.values()), 'all topics: max')
p50 = round(s('iotlat_e2e_latency_quantile_seconds', '_all', window='run', quantile='0.5') * 1e6)
lo, hi = sorted(r['latency_us']['p50'] for r in sub.values())
check(lo <= p50 <= hi, f'all topics: p50 {p50} between the topics\' {lo} and {hi}')
last = s('iotlat_e2e_latency_quantile_seconds_count', '_all', window='last')
check(last is not None and last > 0, f'all topics: the last complete second has {last} messages')
# Buckets are cumulative and end at the count.
for t in ('_all', 'plant1', 'plant2'):
    les = sorted((float(re.search(r'le="([^"]+)"', k).group(1)), v) for k, v in m.items()
                 if k.startswith('iotlat_e2e_latency_seconds_bucket{') and f'topic="{t}"' in k)
    check(len(les) == 63 and all(a[1] <= b[1] for a, b in zip(les, les[1:])) and les[0][0] == 5e-05
          and les[-2][0] == 60, f'{t}: 63 cumulative buckets from 50us to 60s and +Inf')

# The capped plotter: one topic of its own, the totals of both.
cap_topics = {re.search(r'topic="([^"]*)"', k).group(1) for k in capped if 'topic="' in k}
check(cap_topics == {'_all', 'plant1'}, f'IOTLAT_PLOTTER_TOPICS=1: series for {sorted(cap_topics)}')
check(capped.get(f'iotlat_messages_received_total{{run="{run}",driver="zeromq",topic="_all"}}') == total,
      'capped: totals still of every topic')
sys.exit(1 if bad else 0)
PY
# At the end the plotter closes the seconds still open: then the documents
# are complete.
stop_process plot
stop_process capped

python3 - "$WORK" "$RUN" <<'PY'
import json, sys
work, run = sys.argv[1], sys.argv[2]
sub = {t: json.load(open(f'{work}/sub_{t}.json')) for t in ('plant1', 'plant2')}
total = sum(x['received'] for x in sub.values())
bad = 0
def check(ok, what):
    global bad
    print(('ok   ' if ok else 'FAIL ') + what)
    bad += not ok
# NDJSON: one document per record per topic, plus the seconds of all topics.
docs = [json.loads(l) for l in open(f'{work}/docs.ndjson')]
ids = [d['event']['id'] for d in docs]
check(len(ids) == len(set(ids)), f'{len(docs)} documents, ids unique')
for t in ('plant1', 'plant2'):
    n = sum(1 for d in docs if d['iotlat']['topic'] == t)
    xlen = int(open(f'{work}/xlen_{t}.txt').read())
    check(n == xlen, f'{t}: {n} documents for {xlen} records')
    check(sum(d['iotlat']['received'] for d in docs if d['iotlat']['topic'] == t) == sub[t]['received'],
          f'{t}: the documents\' per-second counts add up to the report')
alls = [d for d in docs if d['iotlat']['topic'] == '_all']
check(sum(d['iotlat']['received'] for d in alls) == total and
      sum(d['iotlat']['records'] for d in alls) == sum(int(open(f'{work}/xlen_{t}.txt').read()) for t in sub),
      f'{len(alls)} documents of all topics hold every record once')
check(alls[-1]['iotlat']['total']['received'] == total and
      all(a['@timestamp'] < b['@timestamp'] for a, b in zip(alls, alls[1:])),
      'the seconds of all topics come in order; the last one\'s totals are the run\'s')
check(all(d['event']['dataset'] == 'iotlat.latency' and d['@timestamp'].endswith('Z') and
          d['event']['duration'] > 0 and d['iotlat']['run'] == run for d in docs), 'ECS fields')
sys.exit(1 if bad else 0)
PY
