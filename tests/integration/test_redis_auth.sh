#!/usr/bin/env bash
# The Redis driver against a redis-server with requirepass:
#  1. the right password from IOTLAT_REDIS_PASSWORD_FILE (as a Kubernetes
#     secret mounts it): publish -> subscribe works, and the password appears
#     in no output and no report;
#  2. a wrong password: a clear error naming host:port (never the password),
#     a non-zero exit, quickly;
#  3. no password: an error saying the server wants one and how to give it;
#  4. an ACL user (AUTH user password): works; a wrong one names the user.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../conformance/servers/redis.sh"
trap 'srv_stop >/dev/null 2>&1 || true; cleanup' EXIT
export IOTLAT_DRIVER=redis IOTLAT_PROGRESS=0
PW="s3cret-$RANDOM-pw"
UPW="user-$RANDOM-pw"
REDIS_CLI_AUTH="-a $PW"
srv_start --requirepass "$PW"
printf '%s\n' "$PW" >"$WORK/redis.pw"
printf '%s\n' "$UPW" >"$WORK/user.pw"
chmod 600 "$WORK/redis.pw" "$WORK/user.pw"

# expect_fail NAME TEXT... : run the subscriber, which must fail within 10 s
# with one short message containing every TEXT and not the passwords.
expect_fail() {
    local name=$1 rc=0 t0=$SECONDS; shift
    env $(sub_env) IOTLAT_TOPIC=auth IOTLAT_DURATION=5s "${ENVS[@]}" \
        timeout 30 "$BIN/iotlat-subscriber" >"$WORK/$name.out" 2>&1 || rc=$?
    cat "$WORK/$name.out"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "$name: expected a failure exit, got $rc"; exit 1; }
    [ $((SECONDS - t0)) -le 10 ] || { echo "$name: took $((SECONDS - t0)) s to fail"; exit 1; }
    for text in "$@"; do
        grep -qF -- "$text" "$WORK/$name.out" || { echo "$name: message lacks '$text'"; exit 1; }
    done
    if grep -qF -e "$PW" -e "$UPW" -e "wrong-pw" "$WORK/$name.out"; then
        echo "$name: a password leaked into the output"; exit 1
    fi
    [ "$(wc -l <"$WORK/$name.out")" -le 3 ] || { echo "$name: expected a short, clear error"; exit 1; }
}

echo "== 1: the right password, from a file"
T=auth1.$RANDOM
start sub env $(sub_env) IOTLAT_REDIS_PASSWORD_FILE="$WORK/redis.pw" IOTLAT_TOPIC=$T \
    IOTLAT_DURATION=60s IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
sleep 1
start pub env $(pub_env) IOTLAT_REDIS_PASSWORD_FILE="$WORK/redis.pw" IOTLAT_TOPIC=$T \
    IOTLAT_DEVICES=10 IOTLAT_RATE=100 IOTLAT_DURATION=1s IOTLAT_REPORT_JSON=$WORK/pub.json \
    "$BIN/iotlat-publisher"
wait_for pub; wait_for sub
check "pub['sent'] == 1000" \
      "sub['received_unique'] == 1000 and sub['lost'] == 0 and sub['accounting']['balanced']"
if grep -rqF "$PW" "$WORK"/*.out "$WORK"/*.err "$WORK"/*.json; then
    echo "the password leaked into an output or a report"; exit 1
fi
rm -f "$WORK"/*.json

echo "== 2: a wrong password"
ENVS=(IOTLAT_REDIS_PASSWORD=wrong-pw)
expect_fail wrong "authentication to 127.0.0.1:$RPORT failed" "WRONGPASS"

echo "== 3: no password"
ENVS=()
expect_fail nopw "127.0.0.1:$RPORT requires authentication" "IOTLAT_REDIS_PASSWORD_FILE"

echo "== 4: an ACL user"
redis-cli -p "$RPORT" --no-auth-warning -a "$PW" ACL SETUSER iot on ">$UPW" '~*' '&*' '+@all' >/dev/null
T=auth4.$RANDOM
start sub env $(sub_env) IOTLAT_REDIS_USER=iot IOTLAT_REDIS_PASSWORD_FILE="$WORK/user.pw" \
    IOTLAT_TOPIC=$T IOTLAT_DURATION=60s IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
sleep 1
start pub env $(pub_env) IOTLAT_REDIS_USER=iot IOTLAT_REDIS_PASSWORD_FILE="$WORK/user.pw" \
    IOTLAT_TOPIC=$T IOTLAT_DEVICES=10 IOTLAT_RATE=100 IOTLAT_DURATION=1s \
    IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
wait_for pub; wait_for sub
check "sub['received_unique'] == 1000 and sub['lost'] == 0"
ENVS=(IOTLAT_REDIS_USER=iot IOTLAT_REDIS_PASSWORD=wrong-pw)
expect_fail wronguser "authentication to 127.0.0.1:$RPORT as user 'iot' failed"
srv_stop
echo "redis auth: passed"
