#!/usr/bin/env bash
# Kafka driver options: unknown and bad values stop the program with a
# sentence naming the variable; librdkafka properties pass through
# IOTLAT_KAFKA_PROP_* and IOTLAT_KAFKA_PROPS (applied last, so they win);
# secrets from *_FILE reach librdkafka but never the output; a broker that
# cannot be reached or refuses the security settings fails open() quickly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../conformance/servers/kafka.sh"
export IOTLAT_DRIVER=kafka IOTLAT_PROGRESS=0 IOTLAT_LOG_LEVEL=debug IOTLAT_TOPIC=opts
trap 'rc=$?; srv_stop >/dev/null 2>&1 || true; (exit $rc); cleanup' EXIT
srv_start

# expect STATUS TEXT VAR=VALUE... : run a 1 s publisher, check its exit
# status and that its output contains TEXT.
expect() {
    local want=$1 text=$2 rc=0; shift 2
    env "$@" IOTLAT_KAFKA_CONNECT_TIMEOUT_MS=1500 IOTLAT_DEVICES=1 IOTLAT_RATE=10 \
        IOTLAT_DURATION=1s timeout 30 "$BIN/iotlat-publisher" >"$WORK/out" 2>&1 || rc=$?
    if [ "$rc" != "$want" ] || ! grep -qF -- "$text" "$WORK/out"; then
        echo "FAIL: $* -> exit $rc (want $want), output:"; cat "$WORK/out"; exit 1
    fi
    echo "ok   $* -> exit $rc: $(grep -F -- "$text" "$WORK/out" | head -1 | cut -c1-150)"
}

expect 2 "unknown option IOTLAT_KAFKA_NOPE" IOTLAT_KAFKA_NOPE=1
expect 2 "IOTLAT_KAFKA_ACKS='2' is invalid" IOTLAT_KAFKA_ACKS=2
expect 2 "IOTLAT_KAFKA_LINGER_MS='-1' is invalid" IOTLAT_KAFKA_LINGER_MS=-1
expect 2 "IOTLAT_KAFKA_OFFSET_RESET='middle' is invalid" IOTLAT_KAFKA_OFFSET_RESET=middle
expect 2 "IOTLAT_KAFKA_PROP_NO_SUCH_THING='1' is invalid" IOTLAT_KAFKA_PROP_NO_SUCH_THING=1
expect 2 "IOTLAT_KAFKA_PROPS entry no.such='1' is invalid" IOTLAT_KAFKA_PROPS="linger.ms=2,no.such=1"
expect 2 "IOTLAT_KAFKA_PROPS: 'linger.ms' is invalid" IOTLAT_KAFKA_PROPS="linger.ms"
# Accepted pass-through properties, with an underscore-free name, a _FILE
# value and a list that continues past a comma.
echo 5 >"$WORK/linger"
expect 0 "librdkafka properties passed through: compression.type, linger.ms" \
    IOTLAT_KAFKA_PROP_COMPRESSION_TYPE=lz4 IOTLAT_KAFKA_PROP_LINGER_MS_FILE="$WORK/linger"
# PROPS wins over IOTLAT_KAFKA_BROKERS: the list form reaches the mock even
# though BROKERS names a port where nothing listens.
expect 0 "message(s) delivered" IOTLAT_KAFKA_BROKERS=127.0.0.1:$(free_port) \
    IOTLAT_KAFKA_PROPS="client.id=opts,bootstrap.servers=$IOTLAT_KAFKA_BROKERS"
# Secrets: the password from a file goes to librdkafka (which then tries
# SASL, which the mock does not speak) and never into the output.
echo 'Sekr1t-pw' >"$WORK/pw"
expect 1 "cannot connect to $IOTLAT_KAFKA_BROKERS: Failed to initialize SASL" \
    IOTLAT_KAFKA_PROP_SECURITY_PROTOCOL=SASL_PLAINTEXT IOTLAT_KAFKA_PROP_SASL_MECHANISM=PLAIN \
    IOTLAT_KAFKA_SASL_USERNAME=iotlat IOTLAT_KAFKA_SASL_PASSWORD_FILE="$WORK/pw"
! grep -q "Sekr1t" "$WORK/out" || { echo "FAIL: the password appears in the output"; exit 1; }
# A refused property whose name says secret is reported without its value.
expect 2 "IOTLAT_KAFKA_PROP_MY_SECRET: librdkafka refused property my.secret (value hidden)" \
    IOTLAT_KAFKA_PROP_MY_SECRET="Sekr1t-pw"
! grep -q "Sekr1t" "$WORK/out" || { echo "FAIL: the secret appears in the output"; exit 1; }
expect 1 "SSL handshake failed" IOTLAT_KAFKA_PROP_SECURITY_PROTOCOL=SSL
expect 1 "cannot connect to no-such-host.invalid:9092: Failed to resolve" \
    IOTLAT_KAFKA_BROKERS=no-such-host.invalid:9092
srv_stop
echo "kafka options: passed"
