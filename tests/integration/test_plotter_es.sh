#!/usr/bin/env bash
# iotlat-plotter posts its documents to Elasticsearch's _bulk API and loses
# none on the way: the receiver (a small _bulk stand-in, below) is not there
# when the run starts (connection refused), then answers 500 to its first
# request, then accepts a request but refuses one document with 429 inside
# a 200, then behaves like Elasticsearch (create: 201, or 409 for an _id it
# already has).  Each request is checked to be well-formed _bulk NDJSON with
# ECS documents.  At the end the receiver holds every document of the NDJSON
# file, once (the request answered 500 had been stored: its retry gets 409
# for each document, which counts as delivered), and the plotter's metrics
# counted the failures.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/plotter_lib.sh"
start_redis
RUN=plotes
ES=$(free_port)
PLOT=$(free_port)
cat >"$WORK/receiver.py" <<'PY'
# A _bulk stand-in: validates every request, fails on purpose at first,
# keeps documents by _id, and reports what it saw at GET /stats.
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
lock = threading.Lock()
stored, stats = {}, {'requests': 0, 'failed_500': 0, 'refused_429': 0, 'conflicts': 0,
                     'invalid': [], 'auth': set()}
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        with lock:
            self.reply(200, {**stats, 'auth': sorted(stats['auth']), 'stored': len(stored),
                             'ids': sorted(stored)})
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length'])).decode()
        with lock:
            stats['requests'] += 1
            stats['auth'].add(self.headers.get('Authorization', ''))
            n = stats['requests']
            problems = []
            if self.path != '/_bulk':
                problems.append(f'path {self.path}')
            if self.headers.get('Content-Type') != 'application/x-ndjson':
                problems.append(f'content type {self.headers.get("Content-Type")}')
            if not body.endswith('\n'):
                problems.append('no final newline')
            lines = body.split('\n')[:-1]
            if len(lines) % 2:
                problems.append('odd number of lines')
            pairs = []
            for a, d in zip(lines[::2], lines[1::2]):
                try:
                    action, doc = json.loads(a), json.loads(d)
                    meta = action['create']
                    assert meta['_index'] == 'iotlat-test', meta
                    assert doc['event']['id'] == meta['_id'], 'event.id is not the _id'
                    assert doc['event']['dataset'] == 'iotlat.latency'
                    assert doc['@timestamp'].endswith('Z') and doc['iotlat']['run'] == 'plotes'
                    pairs.append((meta['_id'], doc))
                except Exception as e:
                    problems.append(f'{type(e).__name__}: {e}')
            if problems:
                stats['invalid'] += problems[:5]
                return self.reply(400, {'error': problems[:5]})
            if n == 1:
                # A server error after the documents were stored (a timeout
                # on the way back looks the same): the retry must not store
                # them twice.
                for id_, doc in pairs:
                    stored[id_] = doc
                stats['failed_500'] += 1
                return self.reply(500, {'error': 'simulated outage'})
            items = []
            for i, (id_, doc) in enumerate(pairs):
                if n == 2 and i == 0:  # too busy for this one document
                    stats['refused_429'] += 1
                    items.append({'create': {'_id': id_, 'status': 429,
                                             'error': {'type': 'es_rejected_execution_exception'}}})
                elif id_ in stored:
                    stats['conflicts'] += 1
                    items.append({'create': {'_id': id_, 'status': 409,
                                             'error': {'type': 'version_conflict_engine_exception'}}})
                else:
                    stored[id_] = doc
                    items.append({'create': {'_id': id_, 'status': 201, 'result': 'created'}})
            errors = any(it['create']['status'] >= 300 for it in items)
            self.reply(200, {'took': 1, 'errors': errors, 'items': items})
ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
PY

start_plotter plot "$PLOT" IOTLAT_PLOTTER_INTERVAL=250ms IOTLAT_PLOTTER_NDJSON="$WORK/docs.ndjson" \
    IOTLAT_PLOTTER_ES_URL="http://iotlat:s3cret-pw@127.0.0.1:$ES/" IOTLAT_PLOTTER_ES_INDEX=iotlat-test \
    IOTLAT_GRACE=20s IOTLAT_PROGRESS=1s
measured_run belt1 10 50 5s
measured_run belt2 5 20 5s
sleep 2.5 # the plotter has documents queued and no Elasticsearch to take them
start receiver python3 "$WORK/receiver.py" "$ES"
for n in pub_belt1 pub_belt2 sub_belt1 sub_belt2; do wait_for $n; done
wait_received "$PLOT" "$(received_sum belt1 belt2)"
curl -s "http://127.0.0.1:$PLOT/metrics" >"$WORK/running.prom"
# The end: the plotter closes the last seconds and delivers what is queued.
stop_process plot
curl -s "http://127.0.0.1:$ES/stats" >"$WORK/stats.txt"

python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
st = json.loads(open(f'{work}/stats.txt').read())
docs = [json.loads(l) for l in open(f'{work}/docs.ndjson')]
ids = {d['event']['id'] for d in docs}
err = open(f'{work}/plot.err').read()
bad = 0
def check(ok, what):
    global bad
    print(('ok   ' if ok else 'FAIL ') + what)
    bad += not ok
check(not st['invalid'], f'every request was valid _bulk NDJSON {st["invalid"][:3]}')
check(st['failed_500'] == 1 and st['refused_429'] == 1,
      f'the receiver failed a request (500) and refused a document (429): {st["requests"]} requests')
check(len(docs) == len(ids) and len(ids) > 10, f'{len(ids)} documents in the NDJSON file')
check(st['conflicts'] > 0, f'{st["conflicts"]} documents sent again after the 500 were known by _id (409)')
check(set(st['ids']) == ids, f'Elasticsearch holds all {st["stored"]} of them, each once '
      f'(missing {len(ids - set(st["ids"]))}, extra {len(set(st["ids"]) - ids)})')
check(st['auth'] == ['Basic aW90bGF0OnMzY3JldC1wdw=='], 'user and password from the URL sent as basic auth')
check('s3cret-pw' not in err, 'the password never appears in the log')
check('Connection refused' in err or "Couldn't connect" in err or 'Failed to connect' in err,
      'the refused connection was reported')
m = {}
for line in open(f'{work}/running.prom'):
    if not line.startswith('#') and line.strip():
        k, v = line.rsplit(' ', 1)
        m[k] = float(v)
fails = m.get('iotlat_plotter_es_request_failures_total{run="plotes"}', 0)
check(fails >= 2, f'the plotter counted {fails:.0f} failed requests (refused connections and the 500)')
check(m.get('iotlat_plotter_es_documents_dropped_total{run="plotes"}') == 0 and
      m.get('iotlat_plotter_es_documents_rejected_total{run="plotes"}') == 0, 'nothing dropped or rejected')
sys.exit(1 if bad else 0)
PY
