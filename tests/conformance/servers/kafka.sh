# Kafka for the conformance suite (and the Kafka integration tests, which
# source this file too).  Debian has no Kafka broker, so the "server" is
# librdkafka's protocol-level mock cluster, run as its own process by
# tests/kafka_mock/kafka_mock.c: 3 brokers on 127.0.0.1, bootstrap list on
# its stdout.
#
# The mock keeps its topics and offsets in its own memory, so killing and
# restarting the process would not be a broker restart but a new, empty
# cluster.  A broker outage is therefore the mock's own form of it: SIGUSR1
# takes every broker down (connections closed, new ones refused), SIGUSR2
# brings them back, with all data intact.  srv_kill / srv_restart send those.
#
# Two mock artifacts are tuned away in the clients' environment (both with
# IOTLAT_KAFKA_PROP_*, i.e. the same way a user passes any property):
#  - the mock answers an empty fetch only after the full fetch.wait.max.ms
#    (a real broker answers as soon as data arrives), so consumers ask for
#    2 ms instead of 500 ms, or every latency would read ~250 ms;
#  - reconnect.backoff.max.ms=1000 keeps the reconnect after an outage
#    within a second instead of librdkafka's 10 s back-off ceiling, so the
#    outage case fits the suite's time budget.
#
# The helper is compiled here into $WORK (IL_KAFKA_MOCK may name a prebuilt
# one).
KAFKA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
KMOCK=${IL_KAFKA_MOCK:-}
KMOCK_PID=
KDOWN_PORT=$(free_port)
DOWN_EXPECT="cannot connect to 127.0.0.1:$KDOWN_PORT"
# Joining a consumer group takes ~3 s on the mock (its
# group.initial.rebalance.delay), and subscribe() returns only once
# partitions are assigned, so publishers start after that.
SUB_SETTLE=${SUB_SETTLE:-5}
KAFKA_CLIENT_ENV="IOTLAT_KAFKA_PROP_RECONNECT_BACKOFF_MAX_MS=1000"
KAFKA_CONSUMER_ENV="IOTLAT_KAFKA_PROP_FETCH_WAIT_MAX_MS=2"

kafka_mock_build() {
    [ -n "$KMOCK" ] && return 0
    KMOCK=$WORK/kafka_mock
    cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 \
        "$KAFKA_ROOT/tests/kafka_mock/kafka_mock.c" -lrdkafka -o "$KMOCK" || {
        echo "cannot build the Kafka mock helper (is librdkafka-dev installed?)"
        exit 1
    }
}

# srv_start [kafka_mock options, e.g. -t topic:6]
srv_start() {
    kafka_mock_build
    : >"$WORK/kmock.addr"
    # No `timeout` wrapper: the signals must reach the helper itself; its
    # -l lifetime bounds it.
    "$KMOCK" -l 300 "$@" >"$WORK/kmock.addr" 2>>"$WORK/kmock.err" &
    KMOCK_PID=$!
    PIDS+=($KMOCK_PID)
    local i
    for i in $(seq 100); do
        [ -s "$WORK/kmock.addr" ] && break
        kill -0 "$KMOCK_PID" 2>/dev/null || break
        sleep 0.05
    done
    IOTLAT_KAFKA_BROKERS=$(head -n 1 "$WORK/kmock.addr")
    if [ -z "$IOTLAT_KAFKA_BROKERS" ]; then
        echo "the Kafka mock cluster did not start:"; cat "$WORK/kmock.err"; exit 1
    fi
    export IOTLAT_KAFKA_BROKERS
}
srv_kill() { kill -USR1 "$KMOCK_PID"; }
srv_restart() { kill -USR2 "$KMOCK_PID"; }
srv_stop() {
    [ -n "$KMOCK_PID" ] || return 0
    kill "$KMOCK_PID" 2>/dev/null || true
    wait "$KMOCK_PID" 2>/dev/null || true
    KMOCK_PID=
}

pub_env() { echo "$KAFKA_CLIENT_ENV"; }
tra_env() { echo "$KAFKA_CLIENT_ENV $KAFKA_CONSUMER_ENV"; }
sub_env() { echo "$KAFKA_CLIENT_ENV $KAFKA_CONSUMER_ENV"; }
# Nothing listens there: open() must fail within its connect timeout.
down_env() { echo "IOTLAT_KAFKA_BROKERS=127.0.0.1:$KDOWN_PORT"; }
