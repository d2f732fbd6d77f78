#!/usr/bin/env bash
# The iotlat benchmark suite, run by `make bench` after the build (which
# compiles every tests/bench/*.c into $O/obj/tests/bench/).  It measures the
# publisher's top on-schedule rate over ZeroMQ, the subscriber's receive
# rate, the in-process cost of the per-message code and the end-to-end
# latency at 10 k msg/s, each next to a bare-libzmq baseline measured in the
# same run, and ends with a summary table of figures, ratios and targets.
# The experiments themselves are driven by tests/bench/bench.py (process
# handling, report parsing and the rate search read better in Python).
# Then tests/bench/driver_<name>.sh measures each broker driver against a
# raw loop of its client library (throughput ratio, p50/p99 at 10 k msg/s).
# Exit status: 0 when every benchmark ran, missed targets included; 1 when a
# process crashed, timed out or left a missing or inconsistent report.
set -euo pipefail
cd "$(dirname "$0")/../.."
export O=${O:-.}
command -v python3 >/dev/null || { echo "bench: python3 is required" >&2; exit 1; }
# The core run takes about three minutes; the limits only stop a hang.
timeout --kill-after=10 600 python3 tests/bench/bench.py
# Then each broker driver next to a raw loop of its own client library.
for d in tests/bench/driver_*.sh; do
    echo
    echo "== $(basename "$d" .sh)"
    timeout --kill-after=10 300 bash "$d"
done
