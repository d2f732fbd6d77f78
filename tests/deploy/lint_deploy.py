#!/usr/bin/env python3
"""lint_deploy.py - project rules for the deployment files, on top of what
docker-compose, docker stack config, kustomize and the Kubernetes schema
check.

  lint_deploy.py compose STACK MERGED.yml   (output of docker stack config)
  lint_deploy.py k8s OVERLAY RENDERED.yaml  (output of kubectl kustomize)

Both: every IOTLAT_* variable set is known (the binaries' option table,
`iotlat-publisher --markdown-options` from $IL_BIN_DIR, or a driver option
documented in README.md or plugins/*/README.md; a *_FILE variable counts as
its base name), so a typo is caught before a container refuses to start; the load roles pair up
through Redis (transformer IOTLAT_CLAIM=publisher, subscriber
IOTLAT_CLAIM=transformer, publisher topic with {id}); a driver is named;
ZeroMQ binds every interface.
compose: the iotlat services run image iotlat:latest without build:, the
load roles have deploy.replicas and restart only on failure, and no
environment value holds "{{" (Swarm would expand it as a Go template);
every file a config names exists.
k8s: the load roles have replicas (or Job parallelism) and take POD_IP from
the downward API; the plotter has a /metrics readiness probe and its Service
the Prometheus scrape annotations; the Grafana dashboard ConfigMap holds
dashboards/grafana/iotlat-latency.json.
Prints one line per finding; exits 1 if any.
"""
import glob
import subprocess
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = ("publisher", "transformer", "subscriber")


def documented():
    """The binaries' own option table (all roles) and the drivers' documented
    options."""
    names = set()
    binary = os.path.join(os.environ.get("IL_BIN_DIR", os.path.join(ROOT, "bin")), "iotlat-publisher")
    try:
        table = subprocess.run([binary, "--markdown-options"], capture_output=True, text=True,
                               check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as e:
        sys.exit(f"lint_deploy.py: cannot list the options with {binary}: {e}")
    names |= set(re.findall(r"`(IOTLAT_[A-Z0-9_]+)`", table))
    for f in [os.path.join(ROOT, "README.md")] + glob.glob(os.path.join(ROOT, "plugins", "*", "README.md")):
        names |= set(re.findall(r"IOTLAT_[A-Z0-9_]+[A-Z0-9]", open(f).read()))
    return names


def check_env(where, env, docs, bad):
    for k in env:
        if not k.startswith("IOTLAT_"):
            continue
        base = k[:-5] if k.endswith("_FILE") else k
        if k not in docs and base not in docs:
            bad.append(f"{where}: {k} is neither an iotlat option nor a documented driver option")


def check_roles(where, envs, stack, bad):
    """envs: role -> merged environment of that role."""
    for role in ROLES:
        if role not in envs:
            bad.append(f"{where}: no {role}")
            return
    if not all(envs[r].get("IOTLAT_DRIVER") for r in ROLES):
        bad.append(f"{where}: IOTLAT_DRIVER is not set for every load role")
    if not all(envs[r].get("IOTLAT_REDIS_URL") or envs[r].get("IOTLAT_REDIS_URL_FILE") for r in ROLES):
        bad.append(f"{where}: a load role has no IOTLAT_REDIS_URL(_FILE): replicas cannot pair up")
    if "{id}" not in envs["publisher"].get("IOTLAT_TOPIC", ""):
        bad.append(f"{where}: the publisher's IOTLAT_TOPIC has no {{id}}: replicas would share a topic")
    if envs["transformer"].get("IOTLAT_CLAIM") != "publisher":
        bad.append(f"{where}: the transformer does not claim (IOTLAT_CLAIM=publisher)")
    if envs["subscriber"].get("IOTLAT_CLAIM") != "transformer":
        bad.append(f"{where}: the subscriber does not claim (IOTLAT_CLAIM=transformer)")
    if envs["publisher"].get("IOTLAT_DRIVER") == "zeromq":
        for r in ("publisher", "transformer"):
            if envs[r].get("IOTLAT_ZEROMQ_BIND") != "tcp://0.0.0.0:*":
                bad.append(f"{where}: {r}: ZeroMQ must bind tcp://0.0.0.0:* (a free port on every interface)")


def lint_compose(stack, path, bad):
    doc = yaml.safe_load(open(path))
    docs = documented()
    envs = {}
    for name, svc in (doc.get("services") or {}).items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        env = {k: "" if v is None else str(v) for k, v in env.items()}
        where = f"compose {stack}: {name}"
        for k, v in env.items():
            if "{{" in v:
                bad.append(f"{where}: {k} holds '{{{{': Swarm expands Go templates in the environment")
        image = str(svc.get("image", ""))
        if not image.startswith("iotlat"):
            continue
        check_env(where, env, docs, bad)
        if image != "iotlat:latest" or "build" in svc:
            bad.append(f"{where}: must run image iotlat:latest without build: (got {image})")
        cmd = svc.get("command") or []
        role = cmd[0] if cmd else env.get("IOTLAT_ROLE")
        if role in ROLES:
            envs[role] = env
            dep = svc.get("deploy") or {}
            if not isinstance(dep.get("replicas"), int) or dep["replicas"] < 1:
                bad.append(f"{where}: no deploy.replicas")
            if (dep.get("restart_policy") or {}).get("condition") != "on-failure":
                bad.append(f"{where}: a load role must restart on failure only (it runs to completion)")
        elif role == "plotter":
            if env.get("IOTLAT_PLOTTER_LISTEN") != "0.0.0.0:9464":
                bad.append(f"{where}: the plotter must listen on 0.0.0.0:9464")
        else:
            bad.append(f"{where}: no role (command or IOTLAT_ROLE)")
    check_roles(f"compose {stack}", envs, stack, bad)
    # Neither docker-compose nor docker stack config looks for the files.
    for name, cfg in (doc.get("configs") or {}).items():
        if "file" in cfg and not os.path.isfile(cfg["file"]):
            bad.append(f"compose {stack}: config {name}: {cfg['file']} does not exist")


def lint_k8s(overlay, path, bad):
    objs = [o for o in yaml.safe_load_all(open(path)) if o]
    docs = documented()
    cms = {o["metadata"]["name"]: o.get("data") or {} for o in objs if o["kind"] == "ConfigMap"}
    envs = {}
    for o in objs:
        if o["kind"] not in ("Deployment", "Job", "StatefulSet"):
            continue
        spec = o["spec"]["template"]["spec"]
        for c in spec["containers"]:
            if not str(c.get("image", "")).startswith("iotlat"):
                continue
            where = f"k8s {overlay}: {o['kind']}/{o['metadata']['name']}"
            env = {}
            for ef in c.get("envFrom") or []:
                if "configMapRef" in ef:
                    env.update(cms.get(ef["configMapRef"]["name"], {}))
            for e in c.get("env") or []:
                env[e["name"]] = e.get("value", "<from " + ",".join(e.get("valueFrom", {})) + ">")
            check_env(where, env, docs, bad)
            role = (c.get("args") or [None])[0]
            if role in ROLES:
                envs[role] = env
                n = o["spec"].get("replicas") if o["kind"] != "Job" else o["spec"].get("parallelism")
                if not isinstance(n, int) or n < 1:
                    bad.append(f"{where}: no replicas / parallelism")
                if env.get("POD_IP") != "<from fieldRef>":
                    bad.append(f"{where}: POD_IP does not come from the downward API")
            elif role == "plotter":
                p = c.get("readinessProbe") or {}
                if (p.get("httpGet") or {}).get("path") != "/metrics":
                    bad.append(f"{where}: the plotter has no /metrics readiness probe")
            else:
                bad.append(f"{where}: no role in args")
    svc = next((o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "plotter"), None)
    ann = (svc or {}).get("metadata", {}).get("annotations") or {}
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != "9464":
        bad.append(f"k8s {overlay}: the plotter Service lacks the prometheus.io scrape annotations")
    dash = os.environ.get("IL_DASHBOARD_JSON",
                          os.path.join(ROOT, "dashboards", "grafana", "iotlat-latency.json"))
    cm = next((o for o in objs if o["kind"] == "ConfigMap"
               and o["metadata"]["name"] == "iotlat-grafana-dashboard"), None)
    if cm is None or (cm.get("data") or {}).get(os.path.basename(dash)) != open(dash).read():
        bad.append(f"k8s {overlay}: the ConfigMap iotlat-grafana-dashboard does not hold {dash}")
    elif (cm["metadata"].get("labels") or {}).get("grafana_dashboard") != "1":
        bad.append(f"k8s {overlay}: the dashboard ConfigMap lacks the grafana_dashboard label")
    check_roles(f"k8s {overlay}", envs, overlay, bad)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("compose", "k8s"):
        sys.exit(__doc__)
    mode, name, path = sys.argv[1:]
    bad = []
    (lint_compose if mode == "compose" else lint_k8s)(name, path, bad)
    for b in bad:
        print(f"FAIL {b}")
    if not bad:
        print(f"ok   {mode} {name}: project rules")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
