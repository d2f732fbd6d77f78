#!/usr/bin/env bash
# The Dockerfile's build stage, run on this machine as far as it goes
# without a container engine: its build commands (the RUN instructions
# after the sources are copied) run in a copy of the sources, with /out
# moved into the test's directory.  Checks what the runtime stage copies:
# every bin/iotlat-* and plugins/*.so, stripped, with /usr/lib/iotlat
# compiled in as the drivers' directory; and the runtime package list that
# ldd + dpkg -S found, which must name installed Debian packages and cover
# every shared library the binaries and drivers load.  Then the binaries
# from /out run through the entrypoint, the way the image runs them: a
# publisher, a transformer and a subscriber over ZeroMQ with the drivers
# from /out/lib (IOTLAT_PLUGIN_DIR, as the image's ENV sets it).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
fail() { echo "FAIL $*"; exit 1; }

SRC=$WORK/src
OUT=$WORK/out
mkdir -p "$SRC"
# What the build stage copies from the context.
cp -r "$ROOT/Makefile" "$ROOT/src" "$ROOT/cmd" "$ROOT/plugins" "$SRC/"
# The build stage's commands after its last COPY, with /out moved.
$PY - "$ROOT/Dockerfile" "$OUT" >"$WORK/build.sh" <<'PY'
import re, sys
sys.path.insert(0, sys.argv[1].rsplit("/", 1)[0] + "/tests/deploy")
from check_dockerfile import instructions
ins = instructions(open(sys.argv[1]).read())
froms = [i for i, (n, w, a) in enumerate(ins) if w == "FROM"]
build = ins[froms[0]:froms[1]]
last_copy = max(i for i, (n, w, a) in enumerate(build) if w == "COPY")
print("set -e")
for n, w, a in build[last_copy + 1:]:
    if w == "RUN":
        print(f"# Dockerfile line {n}")
        print(re.sub(r"(?<![\w/.-])/out(?=[/\s]|$)", sys.argv[2], a))
PY
cat "$WORK/build.sh"
grep -q "make " "$WORK/build.sh" || fail "no build command found in the Dockerfile's build stage"
t0=$SECONDS
# As in the image build: none of make test's own settings (O, SANITIZE,
# the jobserver of the make that runs the tests).
(cd "$SRC" && env -u O -u SANITIZE -u MAKEFLAGS -u MFLAGS -u MAKELEVEL VERSION=dockerfile-test \
    sh -e "$WORK/build.sh") >"$WORK/build.log" 2>&1 ||
    { tail -n 30 "$WORK/build.log"; fail "the build stage's commands failed"; }
echo "ok   the build stage's commands ran in $((SECONDS - t0)) s"

for f in "$BIN"/iotlat-*; do
    [ -x "$OUT/bin/$(basename "$f")" ] || fail "$(basename "$f") is missing from /out/bin"
done
for f in "$ROOT"/plugins/*/; do
    d=$(basename "$f"); [ "$d" = common ] && continue
    [ -f "$OUT/lib/$d.so" ] || fail "plugin $d.so is missing from /out/lib"
done
echo "ok   /out/bin: $(cd "$OUT/bin" && echo *); /out/lib: $(cd "$OUT/lib" && echo *)"
for f in "$OUT"/bin/* "$OUT"/lib/*.so; do
    readelf -S "$f" | grep -q '\.debug_info' && fail "$f is not stripped"
    grep -qa '/usr/lib/iotlat' "$f" || case $f in */bin/*) fail "$f does not default to /usr/lib/iotlat" ;; esac
done
echo "ok   stripped; the binaries default to IOTLAT_PLUGIN_DIR=/usr/lib/iotlat"

[ -s "$OUT/runtime-packages" ] || fail "/out/runtime-packages is empty"
while read -r p; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        fail "runtime package '$p' is not an installed Debian package"
done <"$OUT/runtime-packages"
# Every library loaded must belong to a listed package.
for f in "$OUT"/bin/* "$OUT"/lib/*.so; do ldd "$f"; done |
    awk '$2 == "=>" && $3 ~ "^/" {print $3}' | sort -u >"$WORK/libs"
while read -r lib; do
    owner=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib") || fail "no package owns $lib"
    grep -qx "${owner%%:*}" "$OUT/runtime-packages" || fail "$lib (${owner%%:*}) is not in the runtime packages"
done <"$WORK/libs"
for p in libzmq5 libuv1 libhiredis0.14 librdkafka1 libpaho-mqtt1.3; do
    grep -qx "$p" "$OUT/runtime-packages" || fail "runtime packages lack $p"
done
echo "ok   runtime packages ($(wc -l <"$OUT/runtime-packages")) cover the $(wc -l <"$WORK/libs") shared libraries loaded: $(tr '\n' ' ' <"$OUT/runtime-packages")"

# The image's binaries and drivers, run as the image runs them.
export PATH="$OUT/bin:$PATH" IOTLAT_PLUGIN_DIR="$OUT/lib"
EP=$ROOT/compose/entrypoint.sh
P1=$(free_port) P2=$(free_port)
COMMON=(IOTLAT_PROGRESS=0 IOTLAT_WAIT_READY=10s)
start sub env "${COMMON[@]}" IOTLAT_ROLE=subscriber IOTLAT_TOPIC=metro.out IOTLAT_DURATION=30s \
    IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:"$P2" IOTLAT_REPORT_JSON="$WORK/sub.json" "$EP"
start tra env "${COMMON[@]}" IOTLAT_IN_TOPIC=metro IOTLAT_OUT_TOPIC=metro.out IOTLAT_DURATION=30s \
    IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:"$P1" IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:"$P2" "$EP" transformer
start pub env "${COMMON[@]}" IOTLAT_TOPIC=metro IOTLAT_DEVICES=10 IOTLAT_RATE=50 IOTLAT_DURATION=2s \
    IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:"$P1" IOTLAT_REPORT_JSON="$WORK/pub.json" "$EP" publisher
wait_for pub
wait_for tra
wait_for sub
check "pub['scheduled'] == 1000 and pub['config']['plugin_dir'] == '$OUT/lib'" \
      "sub['received_unique'] == sub['expected'] == 1000 and sub['lost'] == 0" \
      "len(sub['hops']) == 2"
