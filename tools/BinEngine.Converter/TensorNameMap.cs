namespace BinEngine.Converter;

/// <summary>
/// Maps checkpoint tensor names to docs/MODEL.md names. The trainer's state_dict already uses
/// them, so the map is the identity for it; wrappers that prefix every name are undone:
/// <c>module.</c> (DataParallel / DistributedDataParallel), <c>_orig_mod.</c> (torch.compile),
/// <c>model.</c> (a LightningModule-style holder). A prefix is stripped only when every tensor
/// carries it, repeatedly (so <c>module._orig_mod.</c> unwraps too). docs/FORMAT.md lists this.
/// </summary>
internal static class TensorNameMap
{
    /// <summary>Whole-checkpoint prefixes that are stripped.</summary>
    public static IReadOnlyList<string> WrapperPrefixes { get; } = ["module.", "_orig_mod.", "model."];

    /// <summary>Returns the tensors under their docs/MODEL.md names.</summary>
    public static IReadOnlyDictionary<string, SourceTensor> Map(IReadOnlyDictionary<string, SourceTensor> tensors)
    {
        IReadOnlyDictionary<string, SourceTensor> current = tensors;
        while (current.Count > 0)
        {
            string? prefix = WrapperPrefixes.FirstOrDefault(p => current.Keys.All(k => k.StartsWith(p, StringComparison.Ordinal) && k.Length > p.Length));
            if (prefix is null)
                break;
            current = current.ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal);
        }
        return current;
    }
}
