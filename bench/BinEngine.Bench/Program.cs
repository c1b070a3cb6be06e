using BenchmarkDotNet.Running;

namespace BinEngine.Bench;

/// <summary>
/// `dotnet run -c Release --project bench/BinEngine.Bench -- quick [iterations]` prints the kernel table of
/// bench/README.md (Stopwatch medians, seconds); `-- e2e` runs the end-to-end comparison harness
/// (binarized model vs its FP32 twin, see EndToEnd/EndToEndHarness.cs); `-- peer` times BinEngine against
/// ONNX Runtime running the FP32 model (Peer/PeerHarness.cs); `-- anchor` the XNOR kernels against the native VPOPCNTQ
/// GEMM of ../shared/anchors/bgemm.c (Peer/AnchorHarness.cs); `-- profile` the stage profile
/// of a full-depth pass (Peer/StageProfile.cs); `-- tokenizer` what encoding costs between forward passes
/// (Peer/TokenizerCost.cs); `-- epilogue` and `-- fusion` measure two levers alone (Peer/EpilogueLever.cs, Peer/FusionLever.cs); anything else goes to
/// BenchmarkDotNet, e.g. `-- --filter '*Kernel*'`.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quick") return QuickTable.Run(args.Skip(1).ToArray());
        if (args.Length > 0 && args[0] == "load") return LoadCost.Run(args[1..]);
        if (args.Length > 0 && args[0] == "fusion") return Peer.FusionLever.Run(args[1..]);
        if (args.Length > 0 && args[0] == "epilogue") return Peer.EpilogueLever.Run(args[1..]);
        if (args.Length > 0 && args[0] == "ab") return Peer.EngineAb.Run(args[1..]);
        if (args.Length > 0 && args[0] == "attention") return Peer.AttentionLever.Run(args[1..]);
        if (args.Length > 0 && args[0] == "activations") return Peer.ActivationLever.Run(args[1..]);
        if (args.Length > 0 && args[0] == "tokenizer") return Peer.TokenizerCost.Run(args[1..]);
        if (args.Length > 0 && args[0] == "profile") return Peer.StageProfile.Run(args[1..]);
        if (args.Length > 0 && args[0] == "anchor") return Peer.AnchorHarness.Run(args[1..]);
        if (args.Length > 0 && args[0] == "peer") return Peer.PeerHarness.Run(args[1..]);
        if (args.Length > 0 && args[0] == "scaling") return Peer.ThreadScaling.Run(args[1..]);
        if (args.Length > 0 && args[0] == "e2e") return EndToEnd.EndToEndHarness.Run(args[1..]);
        if (args.Length > 0 && args[0] == "mechanisms") return EndToEnd.MechanismHarness.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
