#!/usr/bin/env bash
# Checks the single-file x64 builds of tools/publish.sh against the JIT build, on this machine:
#   - each build this CPU can run: `isa` names the kernels of its level (v3: avx2; v4: avx512);
#   - `eval data/sst2/dev.tsv` prints what the JIT build prints (the timing lines and the model path aside);
#   - `batch data/sst2/dev.tsv --logits` gives the JIT build's labels and exit blocks, logits within 5e-3
#     (tools/compare_predictions.py), from the model embedded in the binary (run from a folder with no models/);
#   - size, start-up (one `classify` from process start to exit, model load included, best of 5) and the
#     wall time of `eval data/sst2/dev.tsv`, beside the JIT build's.
#   - below its level (an emulated Nehalem under qemu-x86_64, when installed) it refuses to start.
# A build above this CPU's level is reported as skipped, not failed.
#
#   tools/publish.sh artifacts/publish linux-x64-v3 linux-x64-v4 && tools/check-publish.sh artifacts/publish
#   tools/check-publish.sh --publish     first builds the highest level this CPU runs (what test.sh does)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
publish=0
if [ "${1:-}" = --publish ]; then publish=1; shift; fi
mkdir -p "${1:-artifacts/publish}"
pub=$(realpath "${1:-artifacts/publish}")
jit_dll=$root/src/BinEngine.Cli/bin/Release/net10.0/binengine.dll
[ -f "$jit_dll" ] || dotnet build src/BinEngine.Cli -c Release -nologo -v q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $flags " == *" $1 "* ]]; }
can_v3() { has avx2 && has fma && has bmi2; }
can_v4() { has avx512f && has avx512bw && has avx512vl && has avx512vbmi && has avx512ifma; }

if [ $publish = 1 ]; then
  if [ "$(uname -m)" != x86_64 ]; then echo "== SKIP NativeAOT x64 check: this machine is $(uname -m)"; exit 0; fi
  if can_v4; then level=v4; elif can_v3; then level=v3; else echo "== SKIP NativeAOT x64 check: this CPU has no AVX2 (a v3/v4 build cannot run here)"; exit 0; fi
  # NativeAOT links with the platform's C toolchain (clang, or gcc) and needs zlib's headers: installed when missing
  # and apt-get is usable (root), as tools/check-arm64.sh installs qemu; otherwise skipped with the reason.
  toolchain() { { command -v clang > /dev/null || command -v gcc > /dev/null; } && [ -e /usr/include/zlib.h ]; }
  if ! toolchain; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
      echo "== installing clang and zlib1g-dev for the NativeAOT link"
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang zlib1g-dev; } > /tmp/binengine-aot-apt.log 2>&1 \
        || { echo "== SKIP NativeAOT x64 check: apt-get could not install clang/zlib1g-dev (log: /tmp/binengine-aot-apt.log)"; exit 0; }
    fi
    toolchain || { echo "== SKIP NativeAOT x64 check: no C toolchain (clang or gcc) or no zlib headers, and they cannot be installed here (not root or no apt-get)"; exit 0; }
  fi
  t0=$(date +%s)
  bash tools/publish.sh "$pub" "linux-x64-$level" > "$pub/publish-$level.log" 2>&1 || { cat "$pub/publish-$level.log"; echo "FAIL: NativeAOT publish of linux-x64-$level"; exit 1; }
  echo "== published linux-x64-$level (NativeAOT) in $(( $(date +%s) - t0 )) s"
fi

# Start-up: the best of 5 runs of one classification (load the model, tokenize, classify, exit), in milliseconds.
startup_ms() {
  local best=999999 t0 t1 ms
  for _ in 1 2 3 4 5; do
    t0=$(date +%s%N); (cd "$work" && "$@" classify "a gorgeous, witty, seductive movie." > /dev/null); t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 )); (( ms < best )) && best=$ms
  done
  echo "$best"
}
strip_timing() { grep -vE '^(data|model|latency|throughput) ' "$1"; }

echo "== JIT build ($jit_dll)"
jit=(dotnet "$jit_dll")
t0=$(date +%s%N); "${jit[@]}" eval data/sst2/dev.tsv > "$work/jit.eval"; t1=$(date +%s%N)
jit_eval_s=$(awk "BEGIN{printf \"%.1f\", ($t1-$t0)/1e9}")
"${jit[@]}" batch data/sst2/dev.tsv -o "$work/jit.jsonl" --logits --no-progress > /dev/null
echo "   start-up $(startup_ms dotnet "$jit_dll") ms; eval $jit_eval_s s"

status=0
for level in v3 v4; do
  bin=$pub/linux-x64-$level/binengine
  if [ ! -x "$bin" ]; then echo "== linux-x64-$level: not built ($bin)"; continue; fi
  if [ "$level" = v3 ] && ! can_v3; then echo "== linux-x64-$level: skipped, this CPU lacks AVX2/FMA/BMI2"; continue; fi
  if [ "$level" = v4 ] && ! can_v4; then echo "== linux-x64-$level: skipped, this CPU lacks AVX-512 F/BW/VL/VBMI/IFMA"; continue; fi
  echo "== linux-x64-$level ($bin, $(stat -c %s "$bin") bytes)"
  kernels=$("$bin" isa | grep '^kernels:')
  echo "   $kernels"
  want=$([ "$level" = v3 ] && echo avx2 || echo avx512)
  if [[ "$kernels" != *"xnor-$want"* || "$kernels" != *"plane-$want"* ]]; then
    echo "   FAIL: expected the $want xnor and plane kernels"; status=1
  fi
  t0=$(date +%s%N); (cd "$work" && "$bin" eval "$root/data/sst2/dev.tsv" > "$work/$level.eval"); t1=$(date +%s%N)
  eval_s=$(awk "BEGIN{printf \"%.1f\", ($t1-$t0)/1e9}")
  grep -q '^model .*embedded:' "$work/$level.eval" || { echo "   FAIL: eval did not use the embedded model"; status=1; }
  if diff <(strip_timing "$work/jit.eval") <(strip_timing "$work/$level.eval") > "$work/$level.diff"; then
    echo "   eval output equals the JIT build's (timing lines and model path aside)"
  else
    echo "   FAIL: eval output differs from the JIT build's:"; head -20 "$work/$level.diff"; status=1
  fi
  (cd "$work" && "$bin" batch "$root/data/sst2/dev.tsv" -o "$work/$level.jsonl" --logits --no-progress > /dev/null)
  python3 tools/compare_predictions.py "$work/jit.jsonl" "$work/$level.jsonl" | sed 's/^/   /' || status=1
  if cmp -s "$work/jit.jsonl" "$work/$level.jsonl"; then echo "   batch JSONL byte-identical to the JIT build's"; fi
  echo "   start-up $(startup_ms "$bin") ms; eval $eval_s s"
  # Below its level the binary must refuse to start rather than meet an illegal instruction mid-run: run it
  # on an emulated Nehalem (SSE4.2, no AVX), when qemu-user is here (tools/check-arm64.sh installs it).
  if command -v qemu-x86_64 > /dev/null; then
    below=$(qemu-x86_64 -cpu Nehalem "$bin" isa 2>&1 || true)
    if grep -q 'required instruction sets are not supported' <<< "$below"; then
      echo "   on an emulated Nehalem it refuses to start: \"The required instruction sets are not supported by the current CPU.\""
    else
      echo "   FAIL: on an emulated Nehalem it did not refuse to start:"; head -5 <<< "$below"; status=1
    fi
  fi
done
exit $status
