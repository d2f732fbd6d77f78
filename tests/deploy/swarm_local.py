#!/usr/bin/env python3
"""swarm_local.py - run a compose / swarm stack's services as local processes.

The stack files in compose/ are meant for `docker stack deploy` and `docker
compose up`.  This runner proves their configuration end to end on a
machine without a container engine: it reads the files the way Compose
does (several files merged in order, ${VAR:-default} interpolation from the
environment), and starts

  * every iotlat service (image iotlat:*) as deploy.replicas local
    processes, through compose/entrypoint.sh (the image's entrypoint) with
    the service's command and environment, the build's bin/ first on PATH
    and IOTLAT_PLUGIN_DIR at the build's plugins/ (what the image's ENV
    does);
  * the servers it can from Debian packages: redis (redis-server), nats
    (nats-server), eclipse-mosquitto (mosquitto), each on a free port of
    127.0.0.1;

and lists every other service as skipped, with the reason.  Host names of
services in the iotlat services' environment (redis:6379, nats://nats:4222,
IOTLAT_REDIS_HOST=redis-broker with its IOTLAT_REDIS_PORT) become
127.0.0.1 and the local port; 0.0.0.0 becomes 127.0.0.1, so nothing
listens beyond loopback.

The load roles (publisher, transformer, subscriber) run to completion; the
runner waits for all of them (bounded by --timeout; claimers left without a
topic once the publishers are done are spares, stopped after 3 s), then
reads the plotter's /metrics if a plotter runs, stops what it started and
prints one line per replica and per subscriber report.  Logs, reports
(IOTLAT_REPORT_JSON of every load replica) and server data stay in the work
directory.  Exit status: 0 if every load replica exited 0, 1 if one
failed or the time ran out, 2 on a usage error, 3 if an iotlat service needs
a server that cannot run here.

  tests/deploy/swarm_local.py --stack nats
  IOTLAT_DURATION=5s tests/deploy/swarm_local.py -f compose/common.yml -f compose/zeromq.yml \\
      --reports /tmp/reports --set publisher:IOTLAT_DEVICES=10
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import yaml
except ImportError:  # pragma: no cover - a clear message beats a traceback
    sys.exit("swarm_local.py: PyYAML is missing: apt-get install python3-yaml "
             "(or make deps), and run it with /usr/bin/python3")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = ("publisher", "transformer", "subscriber", "plotter")
LOAD_ROLES = ("publisher", "transformer", "subscriber")

# Images this runner cannot start, and why.  Anything else that is neither
# iotlat nor a server below is skipped as "no local equivalent".
SKIP_REASONS = {
    "prom/prometheus": "Prometheus is not started locally: the runner reads "
                       "the plotter's /metrics itself",
    "grafana/grafana": "Grafana is a UI: not started locally",
    "emqx/emqx": "EMQX has no Debian package (--stand-in SERVICE=mosquitto "
                 "runs Mosquitto in its place)",
    "emqx": "EMQX has no Debian package (--stand-in SERVICE=mosquitto runs "
            "Mosquitto in its place)",
    "rabbitmq": "RabbitMQ needs a private Erlang node and up to 30 s to boot: "
                "not started here (--stand-in SERVICE=mosquitto runs "
                "Mosquitto in its place; tests/integration/test_mqtt_rabbitmq.sh "
                "tests the driver against it)",
    "apache/kafka": "Debian has no Kafka broker (the driver is tested against "
                    "librdkafka's mock cluster in tests/integration)",
    "bitnami/kafka": "Debian has no Kafka broker (the driver is tested against "
                     "librdkafka's mock cluster in tests/integration)",
}


def die(msg, status=2):
    print(f"swarm-local: error: {msg}", file=sys.stderr)
    sys.exit(status)


def log(msg):
    print(f"swarm-local: {msg}", flush=True)


# ---- reading the files the way Compose does ------------------------------

INTERP = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}"
                    r"|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value, env, where):
    """${VAR}, $VAR, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, where) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        val = env.get(name)
        if op in (":-", "-"):
            if val is None or (op == ":-" and val == ""):
                return arg
        elif op in (":?", "?"):
            if val is None or (op == ":?" and val == ""):
                die(f"{where}: {name} is required: {arg}")
        return val or ""
    return INTERP.sub(sub, value)


def merge(base, over):
    """Deep merge of mappings; anything else is replaced (command, lists)."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    return over


def normalize_env(env):
    if env is None:
        return {}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, sep, v = str(item).partition("=")
            out[k] = v if sep else None
        return out
    return {k: (None if v is None else str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in env.items()}


def load_stack(files):
    services = {}
    order = []
    for f in files:
        try:
            with open(f) as fh:
                doc = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as e:
            die(f"cannot read {f}: {e}")
        doc = interpolate(doc, os.environ, os.path.basename(f))
        for name, svc in (doc.get("services") or {}).items():
            svc = dict(svc or {})
            if "environment" in svc:
                svc["environment"] = normalize_env(svc["environment"])
            if name in services:
                services[name] = merge(services[name], svc)
            else:
                services[name] = svc
                order.append(name)
    return order, services


def image_repo(image):
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)
    if ":" in last[-1]:
        image = image[: image.rfind(":")]
    for prefix in ("docker.io/library/", "docker.io/"):
        if image.startswith(prefix):
            image = image[len(prefix):]
    return image


def as_list(cmd):
    if cmd is None:
        return []
    if isinstance(cmd, str):
        return cmd.split()
    return [str(c) for c in cmd]


# ---- local ports and processes --------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, seconds=15):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.05)
    return False


class Runner:
    def __init__(self, args):
        self.args = args
        self.ports = {}          # (service, container port) -> local port
        self.procs = []          # every process started, for cleanup
        self.work = args.work
        os.makedirs(os.path.join(self.work, "logs"), exist_ok=True)

    def port(self, service, cport):
        key = (service, int(cport))
        if key not in self.ports:
            self.ports[key] = free_port()
        return self.ports[key]

    def spawn(self, name, argv, env=None):
        out = open(os.path.join(self.work, "logs", f"{name}.out"), "wb")
        err = open(os.path.join(self.work, "logs", f"{name}.err"), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=self.work,
                             start_new_session=True)
        out.close()
        err.close()
        p.name = name
        self.procs.append(p)
        return p

    def stop_all(self):
        live = [p for p in self.procs if p.poll() is None]
        for p in live:
            try:
                p.terminate()
            except ProcessLookupError:
                pass
        end = time.time() + 5
        for p in live:
            try:
                p.wait(max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # -- servers from Debian packages ------------------------------------
    def start_server(self, name, kind, svc):
        cmd = as_list(svc.get("command"))
        data = os.path.join(self.work, name)
        os.makedirs(data, exist_ok=True)
        if kind == "redis":
            port = self.port(name, 6379)
            argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", data, "--daemonize", "no"]
            if "--requirepass" in cmd:
                argv += ["--requirepass", cmd[cmd.index("--requirepass") + 1]]
            note = "redis-server"
        elif kind == "nats":
            port = self.port(name, 4222)
            argv = ["nats-server", "-a", "127.0.0.1", "-p", str(port)]
            if "-js" in cmd or "--jetstream" in cmd:
                argv += ["-js", "-sd", data]
            note = "nats-server"
        else:  # mosquitto
            port = self.port(name, 1883)
            conf = os.path.join(data, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
                # As root Mosquitto would switch to its own user.
                if os.geteuid() == 0:
                    f.write("user root\n")
            argv = ["mosquitto", "-c", conf]
            note = "mosquitto"
        if not shutil.which(argv[0]):
            die(f"{argv[0]} is not installed (make deps)", 1)
        p = self.spawn(name, argv)
        if not wait_port(port, p):
            self.stop_all()
            die(f"{note} for service {name} did not start on 127.0.0.1:{port} "
                f"(see {self.work}/logs/{name}.err)", 1)
        return f"{note} on 127.0.0.1:{port}"

    # -- the iotlat services' environment --------------------------------
    def rewrite_env(self, service, env, servers):
        """Service host names -> 127.0.0.1 and local ports; 0.0.0.0 -> 127.0.0.1.
        Returns (env, names of non-running services it refers to)."""
        missing = set()
        known = sorted(self.all_services, key=len, reverse=True)
        hostport = re.compile(r"(?<![\w.-])(%s):(\d+)(?!\d)" % "|".join(map(re.escape, known)))

        def sub(m):
            host, cport = m.group(1), m.group(2)
            if host == service:
                return f"127.0.0.1:{self.port(host, cport)}"
            if host not in servers:
                missing.add(host)
                return m.group(0)
            return f"127.0.0.1:{self.port(host, cport)}"
        out = {}
        for k, v in env.items():
            if v is None:
                v = os.environ.get(k)
                if v is None:
                    continue
            v = re.sub(r"0\.0\.0\.0:(\d+)", lambda m: f"127.0.0.1:{self.port(service, m.group(1))}", v)
            v = v.replace("0.0.0.0", "127.0.0.1")
            v = hostport.sub(sub, v)
            out[k] = v
        # IOTLAT_X_HOST=<service> with IOTLAT_X_PORT=<container port>.
        for k, v in list(out.items()):
            if k.endswith("_HOST") and v in self.all_services:
                if v not in servers:
                    missing.add(v)
                    continue
                out[k] = "127.0.0.1"
                pk = k[:-5] + "_PORT"
                if pk in out:
                    out[pk] = str(self.port(v, out[pk]))
                else:
                    die(f"service {service}: {k}={v} has no {pk}: the local port "
                        f"of {v} cannot be given")
        return out, missing

    def run(self, files):
        a = self.args
        order, services = load_stack(files)
        self.services = services
        self.all_services = set(services)
        stand_in = {}
        for item in a.stand_in:
            s, sep, kind = item.partition("=")
            if not sep:
                die(f"--stand-in {item}: expected SERVICE=KIND")
            stand_in[s] = kind
        for s, kind in stand_in.items():
            if s not in services:
                die(f"--stand-in {s}={kind}: no service {s} in the stack")
            if kind not in ("mosquitto", "nats", "redis"):
                die(f"--stand-in {s}={kind}: expected mosquitto, nats or redis")
        overrides = {}
        for item in a.set:
            target, _, kv = item.partition(":") if re.match(r"^[\w.-]+:[A-Z_]", item) else ("", "", item)
            k, sep, v = kv.partition("=")
            if not sep:
                die(f"--set {item}: expected [SERVICE:]KEY=VALUE")
            overrides.setdefault(target, {})[k] = v
        scale = {}
        for item in a.replicas:
            s, _, n = item.partition("=")
            if s not in services or not n.isdigit():
                die(f"--replicas {item}: expected SERVICE=N for a service of the stack")
            scale[s] = int(n)

        log("stack: " + " + ".join(os.path.relpath(f) for f in files))
        plan, servers, skipped = [], {}, {}
        for name in order:
            svc = services[name]
            image = str(svc.get("image", ""))
            repo = image_repo(image) if image else ""
            replicas = scale.get(name, int(((svc.get("deploy") or {}).get("replicas", 1))))
            if name in stand_in:
                servers[name] = (stand_in[name], svc)
                plan.append((name, "server", f"{image}: stand-in {stand_in[name]}"))
            elif repo in ("redis", "nats", "eclipse-mosquitto"):
                kind = {"eclipse-mosquitto": "mosquitto"}.get(repo, repo)
                servers[name] = (kind, svc)
                plan.append((name, "server", image))
            elif repo == "iotlat" or repo.endswith("/iotlat"):
                env = svc.get("environment") or {}
                cmd = as_list(svc.get("command"))
                role = cmd[0] if cmd and cmd[0] in ROLES else \
                    cmd[0][7:] if cmd and cmd[0][7:] in ROLES and cmd[0].startswith("iotlat-") \
                    else env.get("IOTLAT_ROLE")
                if role not in ROLES:
                    skipped[name] = f"{image}: no role in its command or IOTLAT_ROLE"
                elif not os.access(os.path.join(a.bin_dir, f"iotlat-{role}"), os.X_OK):
                    skipped[name] = f"{os.path.join(a.bin_dir, 'iotlat-' + role)} is not built"
                else:
                    plan.append((name, role, replicas))
            else:
                skipped[name] = f"{image}: " + SKIP_REASONS.get(
                    repo, "no local equivalent of this image")
        # Which iotlat services need a service that will not run?
        blocked = {}
        envs = {}
        for name, role, replicas in plan:
            if role == "server":
                continue
            env, missing = self.rewrite_env(name, services[name].get("environment") or {}, servers)
            envs[name] = env
            if missing:
                blocked[name] = missing
        width = max(len(n) for n in order)
        for name in order:
            line = next((p for p in plan if p[0] == name), None)
            if name in skipped:
                print(f"  {name:<{width}}  skipped: {skipped[name]}")
            elif line[1] == "server":
                print(f"  {name:<{width}}  server:  {line[2]}")
            else:
                print(f"  {name:<{width}}  iotlat:  {line[1]} x{line[2]}")
        if blocked:
            for name, missing in blocked.items():
                print(f"swarm-local: service {name} needs {', '.join(sorted(missing))}, "
                      "which cannot run here (skipped above)", file=sys.stderr)
            return 3
        if a.dry_run:
            return 0

        status = 1
        try:
            for name, (kind, svc) in servers.items():
                log(f"{name}: {self.start_server(name, kind, svc)}")
            status = self.run_iotlat(plan, envs, overrides)
        finally:
            self.stop_all()
        return status

    def run_iotlat(self, plan, envs, overrides):
        a = self.args
        base = {k: v for k, v in os.environ.items()
                if not k.startswith("IOTLAT_") and k != "POD_IP"}
        base["PATH"] = a.bin_dir + os.pathsep + base.get("PATH", "/usr/bin:/bin")
        base["IOTLAT_PLUGIN_DIR"] = a.plugin_dir
        os.makedirs(a.reports, exist_ok=True)
        entry = os.path.join(ROOT, "compose", "entrypoint.sh")
        load, longrun = [], []
        start = time.time()
        for name, role, replicas in plan:
            if role == "server":
                continue
            for slot in range(1, replicas + 1):
                env = dict(base)
                env.update(envs[name])
                env.update(overrides.get("", {}))
                env.update(overrides.get(name, {}))
                if role in LOAD_ROLES:
                    env["IOTLAT_REPORT_JSON"] = os.path.join(a.reports, f"{name}.{slot}.json")
                svc = self.services[name]
                # What the image runs: its ENTRYPOINT (or the service's
                # entrypoint) with the service's command as arguments.
                argv = (as_list(svc.get("entrypoint")) or ["/bin/sh", entry]) + \
                    as_list(svc.get("command"))
                p = self.spawn(f"{name}.{slot}", argv, env)
                p.role, p.started = role, time.time()
                (load if role in LOAD_ROLES else longrun).append(p)
        log(f"started {len(load)} load replicas and {len(longrun)} long-running; "
            f"waiting up to {a.timeout:.0f} s for the load replicas to finish")
        deadline = start + a.timeout
        running = list(load)
        spares, idle_since = [], None
        while running and time.time() < deadline:
            time.sleep(0.1)
            for p in [p for p in running if p.poll() is not None]:
                p.ended = time.time()
                running.remove(p)
            # More claimers than topics: once the publishers are done and
            # only replicas that never claimed a topic are left, they are
            # spares (in a swarm they would wait for a topic to take over):
            # stop them after a few seconds.
            if running and all(p.role != "publisher" and not self.claimed(p) for p in running) \
                    and all(p.poll() is not None for p in load if p.role == "publisher"):
                idle_since = idle_since or time.time()
                if time.time() - idle_since >= 3:
                    for p in running:
                        p.terminate()
                        p.wait()
                        p.ended, p.spare = time.time(), True
                    spares, running = running, []
            else:
                idle_since = None
        timed_out = running
        if longrun and not timed_out:
            # The plotter reads Redis every IOTLAT_PLOTTER_INTERVAL: let it
            # catch up with the last records before its /metrics is read.
            time.sleep(a.settle)
        failed = 0
        metrics = None
        for p in longrun:
            if p.poll() is not None:
                print(f"  {p.name}: exited early with status {p.returncode}")
                failed += 1
            elif p.role == "plotter":
                metrics = self.read_metrics(p.name.split(".")[0], envs)
        for p in timed_out:
            p.kill()
            p.wait()
            p.ended = time.time()
        for p in load:
            rc = p.returncode
            took = p.ended - p.started
            state = "timed out" if p in timed_out else "spare" if p in spares else f"exit {rc}"
            print(f"  {p.name:<16} {p.role:<12} {state:<10} {took:6.1f} s"
                  + ("  (never claimed a topic: stopped)" if p in spares else ""))
            if p in timed_out or (rc != 0 and p not in spares):
                failed += 1
                self.tail(p.name)
        if metrics is not None:
            print(f"  plotter /metrics: {metrics}")
        self.summary()
        log(f"{'FAILED' if failed else 'ok'}: {failed} of {len(load) + len(longrun)} "
            f"replicas failed; logs and reports in {self.work}")
        return 1 if failed else 0

    def summary(self):
        """One line per subscriber report: what it claimed and measured."""
        import glob
        import json
        for f in sorted(glob.glob(os.path.join(self.args.reports, "*.json"))):
            try:
                r = json.load(open(f))
            except (OSError, ValueError):
                continue
            if r.get("role") != "subscriber":
                continue
            lat = r.get("latency_us") or {}
            print(f"  {os.path.basename(f)[:-5]:<16} {r.get('store', {}).get('claimed_topic', r.get('topic'))}: "
                  f"expected {r.get('expected')}, received {r.get('received_unique')}, "
                  f"lost {r.get('lost')}, latency p50 {lat.get('p50')} us, p99 {lat.get('p99')} us")

    def claimed(self, p):
        """Has this transformer or subscriber claimed a topic (its log says so)?"""
        try:
            with open(os.path.join(self.work, "logs", f"{p.name}.err"), errors="replace") as f:
                return " claimed " in f.read()
        except OSError:
            return False

    def read_metrics(self, name, envs):
        listen = envs[name].get("IOTLAT_PLOTTER_LISTEN", "127.0.0.1:9464")
        url = f"http://{listen}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = r.read()
            with open(os.path.join(self.work, "plotter-metrics.txt"), "wb") as f:
                f.write(body)
            return f"HTTP {r.status}, {len(body.splitlines())} lines ({self.work}/plotter-metrics.txt)"
        except OSError as e:
            return f"not readable at {url}: {e}"

    def tail(self, name, lines=15):
        path = os.path.join(self.work, "logs", f"{name}.err")
        try:
            with open(path, errors="replace") as f:
                for line in f.readlines()[-lines:]:
                    print(f"      | {line.rstrip()}")
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(
        description="Run a compose / swarm stack's services as local processes.")
    ap.add_argument("-f", "--file", action="append", default=[],
                    help="compose file, in order (default: compose/common.yml + the stack's)")
    ap.add_argument("--stack", help="shortcut for -f compose/common.yml -f compose/STACK.yml")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "bin"))
    ap.add_argument("--plugin-dir", default=os.path.join(ROOT, "plugins"))
    ap.add_argument("--reports", help="write each load replica's JSON report "
                    "(IOTLAT_REPORT_JSON) to DIR/<service>.<slot>.json (default: "
                    "the work directory's reports/)")
    ap.add_argument("--set", action="append", default=[], metavar="[SERVICE:]KEY=VALUE",
                    help="add or override an environment variable of the iotlat services")
    ap.add_argument("--replicas", action="append", default=[], metavar="SERVICE=N",
                    help="run N replicas instead of deploy.replicas")
    ap.add_argument("--stand-in", action="append", default=[], metavar="SERVICE=KIND",
                    help="run a local mosquitto, nats or redis in place of SERVICE")
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds the load replicas may take (default 300)")
    ap.add_argument("--settle", type=float, default=3,
                    help="seconds between the end of the load and reading the plotter's "
                    "/metrics (default 3)")
    ap.add_argument("--work", help="directory for logs, reports and server data "
                    "(default: a new one in /tmp)")
    ap.add_argument("--dry-run", action="store_true",
                    help="print what would run and exit")
    a = ap.parse_args()
    files = list(a.file)
    if a.stack:
        files = [os.path.join(ROOT, "compose", "common.yml"),
                 os.path.join(ROOT, "compose", f"{a.stack}.yml")] + files
    if not files:
        ap.error("give --stack NAME or -f FILE...")
    for f in files:
        if not os.path.isfile(f):
            die(f"no such file: {f}")
    a.bin_dir = os.path.abspath(a.bin_dir)
    a.plugin_dir = os.path.abspath(a.plugin_dir)
    a.work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="iotlat-swarm-local."))
    a.reports = os.path.abspath(a.reports or os.path.join(a.work, "reports"))
    runner = Runner(a)

    def on_signal(signum, _frame):
        runner.stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return runner.run(files)


if __name__ == "__main__":
    sys.exit(main())
