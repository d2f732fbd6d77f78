#!/usr/bin/env bash
# The files in dashboards/ are checked the way their consumers would read
# them, without the consumers (Grafana, Filebeat and Logstash are not Debian
# packages):
#   - the Grafana dashboard type-checks with tsc against @grafana/schema,
#     Grafana's published types, each panel against its plugin's options;
#     and mutated copies with a wrong field type fail (so the check can
#     fail), as does a broken copy of the file run end to end;
#   - every PromQL expression in it (variables filled in) passes
#     `promtool check rules`, and a broken expression does not;
#   - the Prometheus scrape config passes `promtool check config`;
#   - the provisioning, Filebeat and index-template files parse and say
#     what the dashboard and the plotter expect.
# The npm packages are installed into tests/dashboards/node_modules (ignored
# by git) from the committed lockfile the first time, then reused.
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
ROOT=$PWD
DASH=$ROOT/dashboards/grafana/iotlat-latency.json
command -v promtool >/dev/null || { echo "promtool is not installed (make deps: prometheus)"; exit 1; }
command -v npm >/dev/null || { echo "npm is not installed (make deps)"; exit 1; }

# ---- tsc against @grafana/schema --------------------------------------------
NM=$ROOT/tests/dashboards/node_modules
if [ ! -x "$NM/.bin/tsc" ] || [ ! -f "$NM/@grafana/schema/package.json" ]; then
    echo "installing the type-check packages (npm ci in tests/dashboards)"
    (cd tests/dashboards && npm ci --no-audit --no-fund --loglevel=error) || exit 1
fi
ln -s "$NM" "$WORK/node_modules"
cp tests/dashboards/tsconfig.json "$WORK/tsconfig.json"
cat >"$WORK/mutations.json" <<'EOF'
[
  {"path": ["panels", 0, "gridPos", "h"], "value": "4"},
  {"path": ["panels", 6, "options", "tooltip", "mode"], "value": "sideways"},
  {"path": ["panels", 8, "options", "color", "steps"], "value": "64"},
  {"path": ["panels", 4, "options", "colorMode"], "value": "blinking"},
  {"path": ["panels", 0, "targets"], "value": "up"},
  {"path": ["templating", "list", 1, "refresh"], "value": 7},
  {"path": ["refresh"], "value": 5}
]
EOF
node tests/dashboards/typecheck.mjs "$DASH" "$WORK/check.ts" "$WORK/mutations.json"
printf '{"extends": "./tsconfig.json", "files": ["check.ts"]}\n' >"$WORK/tsconfig.check.json"
(cd "$WORK" && "$NM/.bin/tsc" -p tsconfig.check.json) ||
    { echo "FAIL the dashboard does not type-check (or a mutation that must fail did not)"; exit 1; }
echo "ok   $DASH type-checks against @grafana/schema $(node -p "require('$NM/@grafana/schema/package.json').version"); 7 mutated copies are rejected"

# End to end: a broken file fails, and says where.
python3 - "$DASH" "$WORK/broken.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d['panels'][7]['gridPos']['w'] = 'half'
json.dump(d, open(sys.argv[2], 'w'))
PY
node tests/dashboards/typecheck.mjs "$WORK/broken.json" "$WORK/check.ts"
if (cd "$WORK" && "$NM/.bin/tsc" -p tsconfig.check.json >"$WORK/broken.out" 2>&1); then
    echo "FAIL a dashboard with gridPos.w = \"half\" type-checked"; exit 1
fi
grep -q "TS2322" "$WORK/broken.out" || { cat "$WORK/broken.out"; exit 1; }
echo "ok   a dashboard with gridPos.w = \"half\" is rejected: $(head -1 "$WORK/broken.out")"

# A panel type with no schema to check it against is an error too.
python3 - "$DASH" "$WORK/unknown.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d['panels'][0]['type'] = 'fancy-plugin-panel'
json.dump(d, open(sys.argv[2], 'w'))
PY
if node tests/dashboards/typecheck.mjs "$WORK/unknown.json" "$WORK/check.ts" 2>"$WORK/unknown.out"; then
    echo "FAIL a panel of unknown type was not refused"; exit 1
fi
echo "ok   $(cat "$WORK/unknown.out")"

# ---- PromQL: promtool check rules ----------------------------------------------
python3 - "$DASH" "$WORK/rules.yml" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get('panels', []))
exprs = [t['expr'] for p in panels(d['panels']) for t in p.get('targets', [])]
# The variables' selectors are PromQL too: label_values(<selector>, label).
for v in d['templating']['list']:
    m = re.fullmatch(r'label_values\((.*),\s*\w+\)', v.get('query', '')) if v['type'] == 'query' else None
    if m:
        exprs.append(m.group(1))
def fill(e):
    # Grafana's variables as Grafana substitutes them: regex matchers get a
    # regex, $__rate_interval a duration.
    for var, val in (('$__rate_interval', '1m'), ('$__interval', '15s'), ('$__range', '1h'),
                     ('$run', '.*'), ('$driver', '.*'), ('$topic', '.*')):
        e = e.replace(var, val)
    assert '$' not in e, f'unhandled variable in {e}'
    return e
with open(sys.argv[2], 'w') as f:
    f.write('groups:\n  - name: iotlat-dashboard\n    rules:\n')
    for i, e in enumerate(exprs):
        f.write(f'      - record: iotlat:dashboard:expr{i}\n        expr: {json.dumps(fill(e))}\n')
print(f'{len(exprs)} expressions')
assert len(exprs) >= 15
PY
promtool check rules "$WORK/rules.yml"
printf 'groups:\n  - name: broken\n    rules:\n      - record: broken\n        expr: "rate(iotlat_messages_received_total[5m]"\n' >"$WORK/broken_rules.yml"
if promtool check rules "$WORK/broken_rules.yml" >/dev/null 2>&1; then
    echo "FAIL promtool accepted a broken expression"; exit 1
fi
echo "ok   every dashboard expression passes promtool check rules; a broken one does not"

# ---- the other files ----------------------------------------------------------------
promtool check config dashboards/prometheus/prometheus.yml
python3 - <<'PY'
import json, yaml
bad = 0
def check(ok, what):
    global bad
    print(('ok   ' if ok else 'FAIL ') + what)
    bad += not ok
ds = yaml.safe_load(open('dashboards/grafana/provisioning/datasources/iotlat.yaml'))
d0 = ds['datasources'][0]
check(ds['apiVersion'] == 1 and d0['type'] == 'prometheus' and d0['jsonData']['timeInterval'] == '1s',
      'datasource provisioning: a Prometheus datasource, 1s time interval')
pr = yaml.safe_load(open('dashboards/grafana/provisioning/dashboards/iotlat.yaml'))
p0 = pr['providers'][0]
check(pr['apiVersion'] == 1 and p0['type'] == 'file' and p0['options']['path'],
      'dashboard provisioning: a file provider')
dash = json.load(open('dashboards/grafana/iotlat-latency.json'))
names = [v['name'] for v in dash['templating']['list']]
check({'run', 'driver'} <= set(names), f'dashboard variables {names}')
titles = ' '.join(p['title'].lower() for p in dash['panels'])
for word in ('heatmap', 'throughput', 'loss', 'send lag', 'clock'):
    check(word in titles, f'a panel about {word}')
ids = [p['id'] for p in dash['panels']]
check(len(ids) == len(set(ids)), 'panel ids unique')
fb = yaml.safe_load(open('dashboards/elk/filebeat.yml'))
inp = fb['filebeat.inputs'][0]
check(inp['type'] == 'filestream' and inp['parsers'][0]['ndjson']['overwrite_keys'] is True
      and 'output.logstash' in fb, 'filebeat: NDJSON lines, document fields win, to Logstash')
conf = open('dashboards/elk/logstash-iotlat.conf').read()
code = '\n'.join(l.split('#')[0] for l in conf.splitlines())
check(code.count('{') == code.count('}') and 'beats' in code and 'document_id => "%{[event][id]}"' in code,
      'logstash: beats in, documents stored under event.id')
t = json.load(open('dashboards/elk/iotlat-index-template.json'))
props = t['template']['mappings']['properties']
check(props['@timestamp']['type'] == 'date' and props['event']['properties']['duration']['type'] == 'long'
      and props['iotlat']['properties']['topic']['type'] == 'keyword', 'index template maps ECS and iotlat fields')
raise SystemExit(1 if bad else 0)
PY
