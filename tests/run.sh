#!/usr/bin/env bash
# Runs every test, each in its own process: the cmocka unit tests built into
# $O/obj/tests, then the integration scripts in tests/integration, which start
# real processes on loopback.  Prints one line per test and a closing
# "N passed, N failed" line; exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
O=${O:-.}
export IL_BIN_DIR=$PWD/$O/bin
export IL_PLUGIN_DIR=$PWD/$O/plugins
export IL_TEST_PLUGIN_DIR=$PWD/$O/plugins
export IL_TEST_DRIVERS_DIR=$PWD/$O/obj/tests/drivers
export IL_UNIT_DIR=$PWD/$O/obj/tests
export IL_KAFKA_MOCK=$PWD/$O/obj/tests/kafka_mock/kafka_mock
# Sanitizer builds: fail on the first report, and leaks count.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
# OpenSSL keeps per-thread state that Paho's detached threads never free when
# a TLS connection is refused at exit; that is the library's, not ours.
LSAN_SUPP=$(mktemp /tmp/iotlat-lsan.XXXXXX)
printf 'leak:libcrypto.so\nleak:libssl.so\n' >"$LSAN_SUPP"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$LSAN_SUPP:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
LOGDIR=$(mktemp -d /tmp/iotlat-tests.XXXXXX)

run() { # name, command...: prints a line, leaves the verdict in $LOGDIR
    local name=$1; shift
    local log="$LOGDIR/${name//\//_}.log" start=$SECONDS
    if timeout 600 "$@" >"$log" 2>&1; then
        echo pass >"$log.verdict"
        printf 'PASS %-40s %3ds\n' "$name" $((SECONDS - start))
    else
        echo fail >"$log.verdict"
        printf 'FAIL %-40s %3ds (log: %s)\n' "$name" $((SECONDS - start)) "$log"
        tail -n 40 "$log" | sed 's/^/    | /'
    fi
}

for t in "$IL_UNIT_DIR"/test_*; do
    [ -x "$t" ] || continue
    run "unit/$(basename "$t")" "$t"
done
# Integration tests run IL_TEST_JOBS at a time (each picks its own free
# ports and work directory); the heaviest ones, which start dozens of
# processes or depend on a consumer-group rebalance finishing in time (the
# Kafka mock cluster), run alone at the end.
JOBS=${IL_TEST_JOBS:-2}
SOLO="test_store_replicas test_store_replicas_nats test_kafka_group"
running=0
for t in tests/integration/test_*.sh; do
    n=$(basename "$t" .sh)
    case " $SOLO " in *" $n "*) continue ;; esac
    run "integration/$n" bash "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait
for n in $SOLO; do
    [ -f "tests/integration/$n.sh" ] && run "integration/$n" bash "tests/integration/$n.sh"
done

passed=$(grep -l '^pass$' "$LOGDIR"/*.verdict 2>/dev/null | wc -l)
failed=$(grep -l '^fail$' "$LOGDIR"/*.verdict 2>/dev/null | wc -l)
echo
if [ "$failed" -gt 0 ]; then
    echo "failed:"; grep -l '^fail$' "$LOGDIR"/*.verdict | sed 's#.*/#  #; s#\.log\.verdict$##'
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
