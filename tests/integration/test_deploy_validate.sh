#!/usr/bin/env bash
# The deployment files, validated without a container engine or a cluster:
#
#  1. shellcheck on every shell script of the deployment (the image's
#     entrypoint, tests/deploy, these tests);
#  2. the Dockerfile (tests/deploy/check_dockerfile.py): stages FROM
#     debian:12-slim, a non-root USER, no ADD, binaries, drivers and
#     entrypoint in place, RUN lines through shellcheck - and the checker
#     fails on a Dockerfile with another base, USER root or an ADD of a URL;
#  3. the entrypoint against the built binaries: role from argv[1] or
#     IOTLAT_ROLE (which it removes: the binaries refuse unknown IOTLAT_*),
#     usage and errors, a plain command passed through;
#  4. compose/: common.yml + each broker's file through `docker-compose
#     config -q` (Debian's docker-compose) and `docker stack config` (docker
#     CLI 23+, client side only: no daemon needed), then the project's rules
#     (tests/deploy/lint_deploy.py) on the merged file; both tools reject a
#     file with a wrong type, and the rules reject a {{ in the environment, a
#     misspelt variable and a missing config file;
#     the local runner's plan (swarm_local.py --dry-run) lists every service;
#  5. k8s/: every overlay and its -job variant rendered by `kubectl
#     kustomize` (kustomize v5), each object checked against the Kubernetes
#     schema (tests/deploy/validate_k8s.js with kubernetes-models from npm,
#     installed into tests/deploy/node_modules), references, selectors and
#     resources checked, the Jobs' pods equal to the Deployments', then the
#     project's rules; the validator fails on a wrong type, an unknown kind,
#     a non-current API version and a dangling ConfigMap reference.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEPLOY=$ROOT/tests/deploy
STACKS="zeromq nats mosquitto emqx rabbitmq kafka redis"
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

fail() { echo "FAIL $*"; exit 1; }
need() { command -v "$1" >/dev/null || fail "$1 is not installed: $2"; }
# expect_fail WHAT PATTERN CMD...: CMD must fail and print PATTERN.
expect_fail() {
    local what=$1 pattern=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if [ $rc -ne 0 ] && grep -qE -- "$pattern" <<<"$out"; then
        echo "ok   rejected: $what"
    else
        echo "$out" | tail -n 5
        fail "not rejected ($rc): $what (expected /$pattern/)"
    fi
}

need shellcheck "make deps installs Debian's shellcheck"
need docker-compose "make deps installs Debian's docker-compose"
need docker "the docker CLI (23 or later) provides 'docker stack config'; Debian 12's docker.io (20.10) is too old for it"
docker stack config --help >/dev/null 2>&1 ||
    fail "$(docker --version) has no 'docker stack config' (added in docker CLI 23; Debian 12's docker.io 20.10 lacks it)"
need kubectl "kubectl 1.27 or later (kustomize v5); Debian 12's kubernetes-client (1.20, kustomize v2.0.3) is too old"
KUSTOMIZE=$(kubectl version --client -o json 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin).get("kustomizeVersion",""))' || true)
if ! [[ $KUSTOMIZE =~ ^v([0-9]+) ]] || [ "${BASH_REMATCH[1]}" -lt 5 ]; then
    fail "kubectl's kustomize is '${KUSTOMIZE:-none}': k8s/ needs kustomize v5 (components, labels, --load-restrictor); kubectl 1.27 or later has it"
fi
need node "make deps installs nodejs"
need npm "make deps installs npm"
echo "tools: $(docker-compose version --short 2>/dev/null), $(docker --version), kustomize $KUSTOMIZE, node $(node --version), $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"

# The files as they are, or, while a file of dashboards/ they use does not
# exist, a copy with placeholders for the missing ones.
DASH_FILES="dashboards/grafana/iotlat-latency.json
dashboards/grafana/provisioning/datasources/iotlat.yaml
dashboards/grafana/provisioning/dashboards/iotlat.yaml"
TREE=$ROOT
for f in $DASH_FILES; do
    [ -f "$ROOT/$f" ] && continue
    if [ "$TREE" = "$ROOT" ]; then
        TREE=$WORK/tree
        mkdir -p "$TREE/dashboards"
        cp -r "$ROOT/compose" "$ROOT/k8s" "$TREE/"
        [ -d "$ROOT/dashboards" ] && cp -r "$ROOT/dashboards/." "$TREE/dashboards/"
    fi
    mkdir -p "$(dirname "$TREE/$f")"
    case $f in
    *.json) echo '{"title": "placeholder", "panels": []}' >"$TREE/$f" ;;
    *) echo 'apiVersion: 1' >"$TREE/$f" ;;
    esac
    echo "note: $f does not exist: validating a copy with a placeholder"
done
DASH=$TREE/dashboards/grafana/iotlat-latency.json
export IL_DASHBOARD_JSON=$DASH

echo "== 1. shellcheck"
shellcheck -x -P SCRIPTDIR "$ROOT/compose/entrypoint.sh" "$DEPLOY"/*.sh \
    "$ROOT"/tests/integration/test_deploy_*.sh
echo "ok   shellcheck: compose/entrypoint.sh tests/deploy/*.sh tests/integration/test_deploy_*.sh"

echo "== 2. Dockerfile"
$PY "$DEPLOY/check_dockerfile.py" "$ROOT/Dockerfile" --shellcheck
sed 's/^FROM debian:12-slim AS build$/FROM debian:bookworm AS build/' "$ROOT/Dockerfile" >"$WORK/Dockerfile.base"
expect_fail "a stage FROM debian:bookworm" "FROM debian:bookworm: every stage" \
    $PY "$DEPLOY/check_dockerfile.py" "$WORK/Dockerfile.base" --context "$ROOT"
sed 's/^USER .*/USER root/' "$ROOT/Dockerfile" >"$WORK/Dockerfile.root"
expect_fail "USER root" "runs as USER root" \
    $PY "$DEPLOY/check_dockerfile.py" "$WORK/Dockerfile.root" --context "$ROOT"
grep -v '^USER ' "$ROOT/Dockerfile" >"$WORK/Dockerfile.nouser"
expect_fail "no USER" "sets no USER" \
    $PY "$DEPLOY/check_dockerfile.py" "$WORK/Dockerfile.nouser" --context "$ROOT"
{ cat "$ROOT/Dockerfile"; echo "ADD https://example.invalid/x.tar.gz /tmp/"; } >"$WORK/Dockerfile.add"
expect_fail "an ADD of a URL" "fetches a URL" \
    $PY "$DEPLOY/check_dockerfile.py" "$WORK/Dockerfile.add" --context "$ROOT"
# shellcheck disable=SC2016 # the $ is for the Dockerfile
sed 's/^RUN make clean/RUN echo $UNQUOTED \&\& make clean/' "$ROOT/Dockerfile" >"$WORK/Dockerfile.sc"
expect_fail "a RUN line shellcheck warns about" "SC2086" \
    $PY "$DEPLOY/check_dockerfile.py" "$WORK/Dockerfile.sc" --context "$ROOT" --shellcheck

echo "== 3. the entrypoint against the built binaries"
EP=$ROOT/compose/entrypoint.sh
[ -x "$EP" ] || fail "compose/entrypoint.sh is not executable (the image copies it as is)"
for role in publisher transformer subscriber plotter; do
    [ -x "$BIN/iotlat-$role" ] || fail "$BIN/iotlat-$role is not built (make all)"
    out=$(PATH=$BIN:$PATH "$EP" "$role" --version)
    [[ $out == "iotlat-$role "* ]] || fail "entrypoint $role --version printed '$out'"
    out=$(PATH=$BIN:$PATH "$EP" "iotlat-$role" --version)
    [[ $out == "iotlat-$role "* ]] || fail "entrypoint iotlat-$role --version printed '$out'"
    out=$(PATH=$BIN:$PATH IOTLAT_ROLE=$role "$EP" --version)
    [[ $out == "iotlat-$role "* ]] || fail "IOTLAT_ROLE=$role entrypoint --version printed '$out'"
done
echo "ok   the role from argv[1] (with or without iotlat-) or IOTLAT_ROLE runs iotlat-<role>"
# A real (short) run with the role in the environment: the binary refuses
# any IOTLAT_* variable it does not know, so this passes only if the
# entrypoint removed IOTLAT_ROLE.
PORT=$(free_port)
PATH=$BIN:$PATH IOTLAT_ROLE=publisher IOTLAT_DURATION=200ms IOTLAT_WAIT_READY=0 \
    IOTLAT_PROGRESS=0 IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:$PORT IOTLAT_DEVICES=2 \
    IOTLAT_REPORT_JSON="$WORK/ep-pub.json" "$EP" >"$WORK/ep.out" 2>&1 ||
    { cat "$WORK/ep.out"; fail "IOTLAT_ROLE=publisher: the publisher did not run"; }
$PY -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['role']=='publisher' and r['scheduled']>0, r" "$WORK/ep-pub.json"
echo "ok   IOTLAT_ROLE=publisher: a publisher ran (IOTLAT_ROLE was not passed on)"
expect_fail "no role, no arguments: usage, status 2" "^usage: iotlat-entrypoint" "$EP"
rc=0; "$EP" >/dev/null 2>&1 || rc=$?; [ $rc -eq 2 ] || fail "no role: status $rc, expected 2"
expect_fail "IOTLAT_ROLE=bogus" "IOTLAT_ROLE='bogus' is invalid" env IOTLAT_ROLE=bogus "$EP"
expect_fail "options without a role" "options given but no role" "$EP" --devices 3
expect_fail "a role whose binary is missing" "iotlat-plotter is not installed" env PATH=/usr/bin:/bin "$EP" plotter
[ "$("$EP" echo passed-through)" = passed-through ] || fail "a command without a role was not run"
echo "ok   a command without a role runs as given (docker run iotlat:latest sh)"

echo "== 4. compose/"
cd "$TREE"
for s in $STACKS; do
    out=$(docker-compose -f compose/common.yml -f "compose/$s.yml" config -q 2>&1) ||
        { echo "$out"; fail "docker-compose config -q: compose/common.yml + compose/$s.yml"; }
    docker stack config -c compose/common.yml -c "compose/$s.yml" >"$WORK/$s.stack.yml" ||
        fail "docker stack config: compose/common.yml + compose/$s.yml"
    echo "ok   compose/common.yml + compose/$s.yml: docker-compose config -q, docker stack config"
    $PY "$DEPLOY/lint_deploy.py" compose "$s" "$WORK/$s.stack.yml"
done
# Broken copies, outside the tree.
NEG=$WORK/neg
mkdir -p "$NEG"
cp -r "$TREE/compose" "$TREE/dashboards" "$NEG/"
sed 's/^      replicas: 3$/      replicas: three/' compose/nats.yml >"$NEG/compose/nats.yml"
grep -q 'replicas: three' "$NEG/compose/nats.yml" || fail "could not make the broken stack file"
expect_fail "docker-compose: replicas: three" "replicas" \
    docker-compose -f "$NEG/compose/common.yml" -f "$NEG/compose/nats.yml" config -q
expect_fail "docker stack config: replicas: three" "replicas" \
    docker stack config -c "$NEG/compose/common.yml" -c "$NEG/compose/nats.yml"
rm "$NEG/dashboards/grafana/iotlat-latency.json"
docker stack config -c "$NEG/compose/common.yml" -c compose/zeromq.yml >"$WORK/nodash.yml"
expect_fail "lint: a config file that does not exist" "iotlat-latency.json does not exist" \
    $PY "$DEPLOY/lint_deploy.py" compose zeromq "$WORK/nodash.yml"
sed 's/IOTLAT_ACTION: .*/IOTLAT_ACTION: "{{device}}"/' "$WORK/nats.stack.yml" >"$WORK/template.yml"
expect_fail "lint: {{ in a Swarm environment" "Go template" \
    $PY "$DEPLOY/lint_deploy.py" compose nats "$WORK/template.yml"
sed 's/IOTLAT_NATS_URL:/IOTLAT_NAT_URL:/' "$WORK/nats.stack.yml" >"$WORK/typo.yml"
expect_fail "lint: a misspelt variable" "IOTLAT_NAT_URL is neither" \
    $PY "$DEPLOY/lint_deploy.py" compose nats "$WORK/typo.yml"
# The local runner's plan: every service either runs or is listed as
# skipped with a reason; stacks whose broker has no Debian package stop
# (status 3) unless a stand-in is named.
for s in $STACKS; do
    rc=0
    $PY "$DEPLOY/swarm_local.py" --stack "$s" --bin-dir "$BIN" --dry-run >"$WORK/plan.$s" 2>&1 || rc=$?
    case $s in emqx | rabbitmq | kafka) want=3 ;; *) want=0 ;; esac
    [ $rc -eq $want ] || { cat "$WORK/plan.$s"; fail "swarm_local.py --dry-run --stack $s: status $rc, expected $want"; }
    for svc in $(docker stack config -c compose/common.yml -c "compose/$s.yml" |
        $PY -c 'import sys,yaml; print(" ".join(yaml.safe_load(sys.stdin)["services"]))'); do
        grep -qE "^  $svc +(server|iotlat|skipped): .{6,}" "$WORK/plan.$s" ||
            { cat "$WORK/plan.$s"; fail "swarm_local.py --stack $s does not account for service $svc"; }
    done
done
for s in emqx rabbitmq; do
    $PY "$DEPLOY/swarm_local.py" --stack "$s" --bin-dir "$BIN" --dry-run --stand-in "$s=mosquitto" >/dev/null ||
        fail "swarm_local.py --stack $s --stand-in $s=mosquitto --dry-run"
done
grep -q "kafka .*skipped: .*Debian has no Kafka broker" "$WORK/plan.kafka" || fail "kafka is not listed as skipped with its reason"
echo "ok   swarm_local.py plans every stack: each service started or listed as skipped with its reason"

echo "== 5. k8s/"
# npm packages: installed by this test into tests/deploy/node_modules (git
# ignored) from package-lock.json, again only when the lock changed.
if ! cmp -s "$DEPLOY/package-lock.json" "$DEPLOY/node_modules/.iotlat-lock" 2>/dev/null; then
    (cd "$DEPLOY" && npm ci --no-audit --no-fund --loglevel=error) >"$WORK/npm.log" 2>&1 ||
        { cat "$WORK/npm.log"; fail "npm ci in tests/deploy"; }
    cp "$DEPLOY/package-lock.json" "$DEPLOY/node_modules/.iotlat-lock"
fi
validate() { node "$DEPLOY/validate_k8s.js" "$@"; }
render() { kubectl kustomize --load-restrictor LoadRestrictionsNone "k8s/overlays/$1" >"$WORK/$1.k8s.yaml"; }
for s in $STACKS; do
    render "$s" || fail "kubectl kustomize k8s/overlays/$s"
    render "$s-job" || fail "kubectl kustomize k8s/overlays/$s-job"
    validate "$WORK/$s.k8s.yaml"
    validate "$WORK/$s-job.k8s.yaml" --same-pods "$WORK/$s.k8s.yaml"
    $PY "$DEPLOY/lint_deploy.py" k8s "$s" "$WORK/$s.k8s.yaml"
    $PY "$DEPLOY/lint_deploy.py" k8s "$s-job" "$WORK/$s-job.k8s.yaml"
done
# The validator is not vacuous.
$PY - "$WORK/nats.k8s.yaml" "$WORK" <<'PY'
import sys, yaml
src, work = sys.argv[1:]
objs = [o for o in yaml.safe_load_all(open(src)) if o]
def variant(name, change):
    docs = [yaml.safe_load(yaml.safe_dump(o)) for o in objs]
    change(docs)
    with open(f"{work}/neg-{name}.yaml", "w") as f:
        yaml.safe_dump_all(docs, f)
def dep(docs, name):
    return next(o for o in docs if o["kind"] == "Deployment" and o["metadata"]["name"] == name)
variant("type", lambda d: dep(d, "publisher")["spec"].update(replicas="three"))
variant("kind", lambda d: dep(d, "publisher").update(kind="Deploymnet"))
variant("version", lambda d: dep(d, "publisher").update(apiVersion="extensions/v1beta1"))
variant("ref", lambda d: dep(d, "subscriber")["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]
        ["configMapRef"].update(name="iotlat-env"))
variant("container", lambda d: dep(d, "transformer")["spec"]["template"]["spec"]["containers"][0]
        .update(ports=[{"containerPort": "http"}]))
PY
expect_fail "replicas: three (a wrong type)" "Deployment/publisher: schema: .*replicas must be integer" validate "$WORK/neg-type.yaml"
expect_fail "kind Deploymnet (an unknown kind)" "Deploymnet/publisher: unknown kind Deploymnet in apps/v1" validate "$WORK/neg-kind.yaml"
expect_fail "extensions/v1beta1 (not a current API version)" "extensions/v1beta1 is not a current API version" validate "$WORK/neg-version.yaml"
expect_fail "a ConfigMap that does not exist" "ConfigMap iotlat-env does not exist" validate "$WORK/neg-ref.yaml"
expect_fail "containerPort: http (a wrong type, deep in the pod)" "containerPort must be integer" validate "$WORK/neg-container.yaml"
echo "all deployment files valid"
