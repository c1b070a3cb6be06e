using System.Globalization;
using BinEngine.Format;
using BinEngine.Runtime;

namespace BinEngine.Evaluation;

/// <summary>
/// The guarantee a calibration certified, as a model file stores it (<c>exit.guarantee.*</c>, docs/FORMAT.md):
/// with probability at least 1 − <see cref="Delta"/>, the policy's accuracy drop against full depth is at most
/// <see cref="MaxDrop"/> on data from the calibration set's distribution.
/// </summary>
/// <param name="Policy">The calibrated policy with its thresholds, as text.</param>
/// <param name="Method">How it was certified (<see cref="LearnThenTestMethod"/>).</param>
/// <param name="MaxDrop">ε (a fraction of accuracy).</param>
/// <param name="Delta">δ.</param>
/// <param name="Samples">n.</param>
/// <param name="Losses">k: samples the exit got wrong where full depth was right.</param>
/// <param name="PValue">P(Bin(n, ε) ≤ k).</param>
/// <param name="Data">The calibration data's file name.</param>
/// <param name="DataSha256">Lower-case hex SHA-256 of the calibration data file.</param>
internal sealed record ExitGuarantee(string Policy, string Method, double MaxDrop, double Delta, long Samples, long Losses,
    double PValue, string Data, string DataSha256)
{
    /// <summary>The method name of <see cref="LearnThenTest"/>.</summary>
    public const string LearnThenTestMethod = "learn_then_test/fixed_sequence/binomial";

    /// <summary>The guarantee a calibration result certifies, or null when it certified nothing.</summary>
    public static ExitGuarantee? From(CalibrationResult r, string data, string dataSha256) =>
        r.Chosen is null || r.ChosenStep is not { } step ? null
            : new ExitGuarantee(r.Chosen.ToString(), LearnThenTestMethod, r.MaxDrop, r.Delta, r.N, step.Losses, step.PValue, data, dataSha256);

    /// <summary>"accuracy drop ≤ 0.5 points vs full depth with probability ≥ 95% (…)": one line for people.</summary>
    public override string ToString() => string.Format(CultureInfo.InvariantCulture,
        "{0}: accuracy drop vs full depth <= {1:0.###} points with probability >= {2:0.###}% (learn-then-test on {3}, n={4}, {5} losses, p={6:0.####}, sha256 {7})",
        Policy, MaxDrop * 100, (1 - Delta) * 100, Data, Samples, Losses, PValue, DataSha256.Length > 12 ? DataSha256[..12] : DataSha256);

    /// <summary>The guarantee stored in <paramref name="file"/>, or null when it has none.</summary>
    /// <exception cref="ModelFormatException">Some <c>exit.guarantee.*</c> keys are present but not all, or of the wrong type.</exception>
    public static ExitGuarantee? Read(TensorFile file)
    {
        if (!file.HasMetadata(ModelKeys.GuaranteePolicy)) return null;
        try
        {
            return new ExitGuarantee(file.GetString(ModelKeys.GuaranteePolicy), file.GetString(ModelKeys.GuaranteeMethod),
                file.GetDouble(ModelKeys.GuaranteeMaxDrop), file.GetDouble(ModelKeys.GuaranteeDelta),
                file.GetInt(ModelKeys.GuaranteeSamples), file.GetInt(ModelKeys.GuaranteeLosses), file.GetDouble(ModelKeys.GuaranteePValue),
                file.GetString(ModelKeys.GuaranteeData), file.GetString(ModelKeys.GuaranteeDataSha256));
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidCastException or ModelFormatException)
        {
            throw new ModelFormatException($"the model file's {ModelKeys.GuaranteePrefix}* metadata is incomplete or mistyped: {e.Message}");
        }
    }

    /// <summary>
    /// A copy of <paramref name="source"/> whose default policy is <paramref name="policy"/> with its thresholds and
    /// whose <c>exit.guarantee.*</c> entries state <paramref name="guarantee"/>; every tensor and every other metadata
    /// entry (other policies' thresholds included) is kept. Returns the file's bytes (so the caller may overwrite the
    /// source once it is closed).
    /// </summary>
    /// <remarks>
    /// A conformal q̂ stored for the policy (<c>exit.conformal.{policy}.*</c>) holds only for the thresholds it was
    /// calibrated with, so it is dropped, or replaced by <paramref name="conformal"/> (α, q̂ recomputed for the new thresholds).
    /// </remarks>
    public static byte[] CalibratedCopy(TensorFile source, ExitPolicy policy, ExitGuarantee guarantee, (double Alpha, double Qhat)? conformal = null)
    {
        if (policy.Kind == ExitPolicyKind.None)
            throw new ArgumentException("policy none has no thresholds to store", nameof(policy));
        string thresholds = ModelKeys.ThresholdsPrefix + policy.Name + ".", sets = ModelKeys.ConformalPrefix + policy.Name + ".";
        var w = new TensorFileWriter();
        foreach (var (key, value) in source.Metadata)
        {
            if (key == ModelKeys.Policy || key.StartsWith(thresholds, StringComparison.Ordinal) || key.StartsWith(sets, StringComparison.Ordinal)
                || key.StartsWith(ModelKeys.GuaranteePrefix, StringComparison.Ordinal))
                continue;
            w.Add(key, value);
        }
        w.Add(ModelKeys.Policy, MetadataValue.FromString(policy.Name));
        foreach (var (name, value) in policy.Parameters)
            w.Add(thresholds + name, name == "t" ? MetadataValue.FromInt64((long)value) : Number((float)value));
        w.Add(ModelKeys.GuaranteePolicy, MetadataValue.FromString(guarantee.Policy))
         .Add(ModelKeys.GuaranteeMethod, MetadataValue.FromString(guarantee.Method))
         .Add(ModelKeys.GuaranteeMaxDrop, MetadataValue.FromFloat64(guarantee.MaxDrop))
         .Add(ModelKeys.GuaranteeDelta, MetadataValue.FromFloat64(guarantee.Delta))
         .Add(ModelKeys.GuaranteeSamples, MetadataValue.FromInt64(guarantee.Samples))
         .Add(ModelKeys.GuaranteeLosses, MetadataValue.FromInt64(guarantee.Losses))
         .Add(ModelKeys.GuaranteePValue, MetadataValue.FromFloat64(guarantee.PValue))
         .Add(ModelKeys.GuaranteeData, MetadataValue.FromString(guarantee.Data))
         .Add(ModelKeys.GuaranteeDataSha256, MetadataValue.FromString(guarantee.DataSha256));
        if (conformal is var (alpha, qhat))
            w.Add(sets + "alpha", MetadataValue.FromFloat64(alpha)).Add(sets + "qhat", MetadataValue.FromFloat64(qhat));
        foreach (TensorInfo t in source.Tensors)
            w.AddCopy(source, t);
        return w.ToArray();
    }

    // The float's shortest text read back as a double: 0.62f is stored as 0.62 (not 0.6200000047683716) and reads back as the same float.
    private static MetadataValue Number(float x) => MetadataValue.FromFloat64(double.Parse(x.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));
}
