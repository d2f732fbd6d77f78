#!/usr/bin/env bash
# The NATS driver's security options against a real nats-server:
#  1. user/password: the right password (read from a _FILE, as Kubernetes
#     mounts secrets) carries every message; a wrong one stops the program
#     at once with a short error that says "authorization" and does not
#     print the password;
#  2. token: the right token works, a wrong one is refused the same way;
#  3. TLS with a CA and a server certificate made here with openssl: every
#     message arrives over TLS; without the CA the handshake fails clearly;
#  4. mutual TLS: a client certificate is required and, given, accepted.
. "$(dirname "$0")/lib.sh"
command -v nats-server >/dev/null || { echo "nats-server is not installed"; exit 1; }
command -v openssl >/dev/null || { echo "openssl is not installed"; exit 1; }
export IOTLAT_DRIVER=nats IOTLAT_PROGRESS=0

SRV_PID=
srv() { # srv PORT ARGS... : start nats-server, wait until it listens
    local port=$1; shift
    nats-server -a 127.0.0.1 -p "$port" "$@" >>"$WORK/nats-server.log" 2>&1 &
    SRV_PID=$!
    PIDS+=($SRV_PID)
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nats-server did not start"; cat "$WORK/nats-server.log"; exit 1
}
srv_stop() { kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; }

# roundtrip ENV... : subscriber then publisher (5 devices x 100 msg/s for
# 1 s) with the given driver options; checks that all 500 arrived.
roundtrip() {
    rm -f "$WORK"/*.json
    local T=auth.$RANDOM
    start sub env "$@" IOTLAT_TOPIC=$T IOTLAT_DURATION=30s \
        IOTLAT_REPORT_JSON=$WORK/sub.json "$BIN/iotlat-subscriber"
    sleep 0.5
    start pub env "$@" IOTLAT_TOPIC=$T IOTLAT_DEVICES=5 IOTLAT_RATE=100 IOTLAT_DURATION=1s \
        IOTLAT_REPORT_JSON=$WORK/pub.json "$BIN/iotlat-publisher"
    wait_for pub; wait_for sub
    check "pub['sent'] == 500 and pub['send_failed'] == 0" \
          "sub['received_unique'] == 500 and sub['lost'] == 0" \
          "sub['accounting']['balanced'] and sub['publishers_ended']"
}

# refused PATTERN ENV... : the subscriber must fail quickly, non-zero, with
# a short message matching PATTERN that never shows the secret.
refused() {
    local pattern=$1; shift
    local rc=0 t0=$SECONDS
    env "$@" IOTLAT_TOPIC=x IOTLAT_DURATION=5s timeout 30 "$BIN/iotlat-subscriber" \
        >"$WORK/refused.out" 2>&1 || rc=$?
    cat "$WORK/refused.out"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "expected a failure exit, got $rc"; exit 1; }
    [ $((SECONDS - t0)) -le 10 ] || { echo "took $((SECONDS - t0)) s to fail"; exit 1; }
    grep -qi -- "$pattern" "$WORK/refused.out" || { echo "message does not say '$pattern'"; exit 1; }
    [ "$(wc -l <"$WORK/refused.out")" -le 3 ] || { echo "expected a short, clear error"; exit 1; }
    if grep -q -e s3cret-pw -e wrong-pw -e tok-3141 -e wrong-tok "$WORK/refused.out"; then
        echo "the error message shows a secret"; exit 1
    fi
}

echo "== user/password"
P=$(free_port)
srv "$P" --user bob --pass s3cret-pw
printf 's3cret-pw\n' >"$WORK/password"
roundtrip IOTLAT_NATS_URL=nats://127.0.0.1:$P IOTLAT_NATS_USER=bob \
    IOTLAT_NATS_PASSWORD_FILE="$WORK/password"
refused authorization IOTLAT_NATS_URL=nats://127.0.0.1:$P IOTLAT_NATS_USER=bob \
    IOTLAT_NATS_PASSWORD=wrong-pw
refused authorization IOTLAT_NATS_URL=nats://127.0.0.1:$P
refused "IOTLAT_NATS_PASSWORD" IOTLAT_NATS_URL=nats://127.0.0.1:$P IOTLAT_NATS_USER=bob
srv_stop

echo "== token"
P=$(free_port)
srv "$P" --auth tok-3141
roundtrip IOTLAT_NATS_URL=nats://127.0.0.1:$P IOTLAT_NATS_TOKEN=tok-3141
refused authorization IOTLAT_NATS_URL=nats://127.0.0.1:$P IOTLAT_NATS_TOKEN=wrong-tok
srv_stop

echo "== TLS"
# A CA, a server certificate for 127.0.0.1 signed by it, and a client
# certificate for the mutual-TLS case.
(
    cd "$WORK"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=iotlat test CA" \
        -keyout ca.key -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=iotlat-client" -keyout client.key -out client.csr
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile client.ext -out client.pem
) >"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log"; exit 1; }
P=$(free_port)
srv "$P" --tls --tlscert "$WORK/server.pem" --tlskey "$WORK/server.key"
roundtrip IOTLAT_NATS_URL=tls://127.0.0.1:$P IOTLAT_NATS_TLS_CA="$WORK/ca.pem"
# The server really spoke TLS: a client that does not trust its CA fails.
refused "TLS handshake failed" IOTLAT_NATS_URL=nats://127.0.0.1:$P
refused "IOTLAT_NATS_TLS_CA" IOTLAT_NATS_URL=nats://127.0.0.1:$P \
    IOTLAT_NATS_TLS_CA="$WORK/no-such-ca.pem"
srv_stop

echo "== mutual TLS"
P=$(free_port)
srv "$P" --tlsverify --tlscert "$WORK/server.pem" --tlskey "$WORK/server.key" \
    --tlscacert "$WORK/ca.pem"
roundtrip IOTLAT_NATS_URL=tls://127.0.0.1:$P IOTLAT_NATS_TLS_CA="$WORK/ca.pem" \
    IOTLAT_NATS_TLS_CERT="$WORK/client.pem" IOTLAT_NATS_TLS_KEY="$WORK/client.key"
refused "client certificate" IOTLAT_NATS_URL=tls://127.0.0.1:$P IOTLAT_NATS_TLS_CA="$WORK/ca.pem"
srv_stop
echo "nats auth/TLS: passed"
