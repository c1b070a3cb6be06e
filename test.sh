#!/usr/bin/env bash
# The whole test suite: what the README's test command runs and what CI runs.
# It installs what it needs (Debian packages for the trainer's tests) and prints, first, the
# ISAs the machine and the .NET runtime report, so a forced-ISA leg that changed nothing shows.
set -euo pipefail
cd "$(dirname "$0")"

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs || uname -m)"
echo "== cpu flags: $(grep -m1 -o -wE 'avx2|avx512f|avx512bw|avx512vl|avx512_vbmi|gfni|avx_vnni|avx512_vpopcntdq' /proc/cpuinfo 2>/dev/null | tr '\n' ' ' || true)"

dotnet build BinEngine.sln -c Release -nologo -v q

echo "== runtime ISA report"
dotnet src/BinEngine.Cli/bin/Release/net10.0/binengine.dll isa || true

echo "== full suite, best ISA"
dotnet test BinEngine.sln -c Release --no-build -nologo

# Each SIMD path must agree with the scalar reference with that path switched off too. A leg runs
# fewer tests than the best-ISA run only because the kernel theories are generated over the kernels
# the process supports: each leg prints which kernels it lost, so a smaller count has its reason.
# DOTNET_EnableAVX512v2=0 takes VBMI (and IFMA) away: the AVX-512 of Skylake-SP and Cascade Lake, whose own
# kernel choice (xnor-avx512bw-lut4, plane-avx2-harleyseal) runs nowhere else.
all_kernels=$(dotnet src/BinEngine.Cli/bin/Release/net10.0/binengine.dll isa | sed -n 's/^supported implementations: //p')
for leg in "BINENGINE_ISA=avx2" "BINENGINE_ISA=v128" "BINENGINE_ISA=scalar" "DOTNET_EnableAVX512v2=0" "DOTNET_EnableAVX512=0" "DOTNET_EnableAVX2=0" "DOTNET_EnableHWIntrinsic=0"; do
  echo "== kernel and runtime tests with $leg"
  env "$leg" dotnet src/BinEngine.Cli/bin/Release/net10.0/binengine.dll isa | head -1
  leg_kernels=$(env "$leg" dotnet src/BinEngine.Cli/bin/Release/net10.0/binengine.dll isa | sed -n 's/^supported implementations: //p')
  lost=$(comm -23 <(tr ' ' '\n' <<<"$all_kernels" | sort) <(tr ' ' '\n' <<<"$leg_kernels" | sort) | tr '\n' ' ')
  echo "   kernels this process does not support (their theory cases are not generated): ${lost:-none}"
  env "$leg" dotnet test tests/BinEngine.Tests/BinEngine.Tests.csproj -c Release --no-build -nologo \
    --filter "Category=Isa"
done

echo "== trainer tests (PyTorch)"
bash tools/train/test.sh

# ARM64 for real: the self-contained linux-arm64 single-file build under qemu-user (installed when missing;
# skipped with the reason when it cannot be): AdvSimd/Vector128 kernels, and dev-set labels, exit blocks and
# logits equal to the x64 build's (tools/check-arm64.sh).
echo "== linux-arm64 under qemu-user"
bash tools/check-arm64.sh

# The NativeAOT single-file binary at the highest level this CPU runs (x86-64-v4 with AVX-512, else v3):
# its isa report names that level's kernels, and eval/batch on dev equal the JIT build's (tools/check-publish.sh).
echo "== NativeAOT x64 build against the JIT build"
bash tools/check-publish.sh --publish artifacts/aot-check
