#!/usr/bin/env bash
# Single-file `binengine` builds with the default model compiled in (no model file beside them).
#
#   tools/publish.sh [OUT_DIR] [TARGET...]      default OUT_DIR artifacts/publish, default targets: all three
#
# Which runs where, and why there are two x64 builds: NativeAOT compiles every method once, ahead of time,
# for a fixed instruction set. Built for the default baseline, Avx2.IsSupported and Avx512*.IsSupported are
# compile-time false (AVX2 needs the VEX encoding, which AOT only uses opportunistically when AVX is in the
# baseline, and AVX-512 is never opportunistic), so a default AOT build runs only the Vector128 and scalar
# kernels (issue 16: eval on dev 58 s against 1.9 s with the JIT). So the binary is built per level:
#
#   linux-x64-v3   NativeAOT, x86-64-v3 (AVX2, FMA, BMI1/2, LZCNT, MOVBE): Intel Haswell (2013) and later,
#                  AMD Zen 1 and later. Runs the avx2 kernels.
#   linux-x64-v4   NativeAOT, x86-64-v4 + avx512v2 (AVX-512 F/BW/CD/DQ/VL + IFMA/VBMI): Intel Ice Lake,
#                  Sapphire Rapids and later, AMD Zen 4 and later. Runs the avx512 kernels (the Harley-Seal
#                  ones need VBMI). On Skylake-X/Cascade Lake (AVX-512 without VBMI) use v3.
#   linux-arm64    self-contained single-file (JIT, the runtime inside; ~70 MB): any ARMv8-A with AdvSimd
#                  runs the Vector128 kernels. Not NativeAOT: cross-compiling NativeAOT to arm64 needs an
#                  arm64 linker and sysroot this script does not install; the JIT build needs nothing.
#
# A binary started on a CPU below its level stops at once with the runtime's message that the CPU lacks
# required instruction sets; it never runs an illegal instruction. tools/check-publish.sh checks the builds.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-artifacts/publish}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(linux-x64-v3 linux-x64-v4 linux-arm64)

# %2C is an escaped comma: a bare one would split the -p: switch into two MSBuild properties.
common=(src/BinEngine.Cli/BinEngine.Cli.csproj -c Release -nologo -v q -p:EmbedDefaultModel=true -p:DebugType=none)
for t in "${targets[@]}"; do
  echo "== $t -> $out/$t"
  start=$(date +%s)
  rm -rf "${out:?}/$t"
  case "$t" in
    linux-x64-v3) dotnet publish "${common[@]}" -r linux-x64 -p:PublishAot=true -p:IlcInstructionSet=x86-64-v3 -o "$out/$t" ;;
    linux-x64-v4) dotnet publish "${common[@]}" -r linux-x64 -p:PublishAot=true -p:IlcInstructionSet=x86-64-v4%2Cavx512v2 -o "$out/$t" ;;
    linux-arm64)  dotnet publish "${common[@]}" -r linux-arm64 --self-contained -p:PublishSingleFile=true \
                    -p:IncludeNativeLibrariesForSelfExtract=true -p:EnableCompressionInSingleFile=true -o "$out/$t" ;;
    *) echo "unknown target '$t' (linux-x64-v3, linux-x64-v4, linux-arm64)" >&2; exit 2 ;;
  esac
  # Only the binary ships: the native symbols (binengine.dbg) stay in obj/, the library's XML docs are for IDEs.
  rm -f "$out/$t"/*.dbg "$out/$t"/*.xml "$out/$t"/*.pdb
  ls -l "$out/$t"
  echo "   $(( $(date +%s) - start )) s"
done
