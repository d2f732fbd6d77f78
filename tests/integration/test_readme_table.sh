#!/usr/bin/env bash
# The README's variable table is the one the binaries print: a variable
# added to the code and not documented fails here.
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
"$BIN/iotlat-publisher" --markdown-options >"$WORK/table.md"
sed -n '/<!-- BEGIN ENV TABLE/,/<!-- END ENV TABLE/p' README.md | sed '1d;$d' >"$WORK/readme.md"
diff -u "$WORK/readme.md" "$WORK/table.md"
# Every contract variable from the design is there.
for v in IOTLAT_DRIVER IOTLAT_TOPIC IOTLAT_IN_TOPIC IOTLAT_OUT_TOPIC IOTLAT_DEVICES \
         IOTLAT_RATE IOTLAT_DURATION IOTLAT_PAYLOAD IOTLAT_PAYLOAD_FILE IOTLAT_ENCODING \
         IOTLAT_REPORT_JSON IOTLAT_RUN_ID; do
    grep -q "^| \`$v\`" "$WORK/table.md" || { echo "missing $v"; exit 1; }
done
echo "README table matches the binaries"
