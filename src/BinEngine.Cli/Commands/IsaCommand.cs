using System.CommandLine;
using BinEngine.Kernels;

namespace BinEngine.Cli.Commands;

/// <summary><c>binengine isa</c>: the kernels chosen for this machine and why (BINENGINE_ISA forces an ISA), and the ISAs the runtime reports.</summary>
internal static class IsaCommand
{
    internal static Command Create(CliContext cx)
    {
        var command = new Command("isa", $"Show the GEMM kernels chosen for this CPU and the instruction sets the runtime reports (set {KernelRegistry.IsaVariable}=scalar|v128|avx2|avx512 to force one)");
        command.SetAction(_ =>
        {
            cx.Stdout.WriteLine(KernelRegistry.Report());
            return ExitCodes.Ok;
        });
        return command;
    }
}
