#!/usr/bin/env bash
# Issue 21's whole GPU half in ONE call of the lent machine (10 minutes at most), for when device time is
# short: every family's export (device-export.sh exports, dense), the tier bench through the SDK
# (device-tiers.sh) and tracks B/C/D in PyTorch with nvJPEG (device-export.sh torch). Each step's files are
# tarred into $OUT as it ends (what is there comes back even when the call is cut); a step whose budget no
# longer fits before LIMIT seconds is skipped and says so. Carry both payloads (bench/gpu/pack.sh, then
# pack.sh export and pack.sh tiers): node.xz, triton.tar.xz, app.tar.xz, libpython.tar.xz, tracks-repo,
# images, contracts.json, yolo11n_int8_640.onnx (~63 MB of the 64 MiB a call takes, with the tree).
#
#   OUT=$OUT bash bench/gpu/device-issue21.sh        # then here: tar -xzf each *.tar.gz into bench/gpu/results/h200-...
#   STEPS="exports dense tiers" LIMIT=480 OUT=$OUT bash bench/gpu/device-issue21.sh   # some steps, in that order
set -uo pipefail
cd "$(dirname "$0")/../.."
FINAL=${OUT:?set OUT}
W=/tmp/issue21
LIMIT=${LIMIT:-575}
export PYTHONUNBUFFERED=1
mkdir -p "$W" "$FINAL"
step() {  # step NAME BUDGET_S COMMAND...: run with its own OUT, killed at its budget, its files tarred into $FINAL
  local name=$1 budget=$2
  shift 2
  if [ $((SECONDS + budget)) -gt "$LIMIT" ]; then echo "skip $name at $SECONDS s: needs $budget s" | tee -a "$FINAL/steps.txt"; return; fi
  mkdir -p "$W/$name"
  # Snapshots every 15 s: a call cut by the device budget still brings back the models already done.
  ( while sleep 15; do tar -C "$W" -czf "$FINAL/$name.part.tar.gz" "$name" 2>/dev/null; done ) &
  local snap=$!
  OUT=$W/$name timeout "$budget" "$@" > "$W/$name/console.txt" 2>&1
  echo "$name exit $? at $SECONDS s" | tee -a "$FINAL/steps.txt"
  kill $snap 2>/dev/null; wait $snap 2>/dev/null
  pkill -f tritonserver 2>/dev/null   # a server a step left (killed at its budget) must not hold the GPU for the next
  tar -C "$W" -czf "$FINAL/$name.tar.gz" "$name" && rm -f "$FINAL/$name.part.tar.gz"
}
for s in ${STEPS:-exports tiers dense torch}; do
  case $s in
    exports) step exports 260 bash bench/gpu/device-export.sh exports ;;
    tiers) step tiers 200 bash bench/gpu/device-tiers.sh ;;
    dense) step dense 200 bash bench/gpu/device-export.sh dense ;;
    torch) step torch 130 bash bench/gpu/device-export.sh torch ;;
    *) echo "device-issue21.sh: unknown step $s (exports|tiers|dense|torch)" | tee -a "$FINAL/steps.txt" ;;
  esac
done
