using System.CommandLine;
using BinEngine.Runtime;

namespace BinEngine.Cli;

/// <summary>
/// The exit-policy options shared by classify, batch and eval: --policy picks a rule, --tau, --kappa,
/// --patience and --q override the thresholds the model file stores for it, and --sets asks for the
/// conformal prediction sets calibrated for it.
/// </summary>
internal sealed class PolicyOptions
{
    public Option<string?> Policy { get; } = new("--policy")
    {
        Description = "Exit policy: entropy_reduction, entropy, normalized_entropy, confidence, patience, q_exit, learned_gate or none (q_exit and learned_gate need a model with those controllers; default: the model file's)",
        HelpName = "NAME",
    };

    public Option<float?> Tau { get; } = new("--tau")
    {
        HelpName = "TAU",
        Description = "τ of the policy (entropy_reduction: bound on the fractional entropy drop; entropy, normalized_entropy: entropy bound; confidence: probability bound; learned_gate: bound on the gate g); default: the model file's",
    };

    public Option<float?> Kappa { get; } = new("--kappa")
    {
        HelpName = "KAPPA",
        Description = "κ of entropy_reduction: bound on the normalized entropy H/ln C (default: the model file's)",
    };

    public Option<int?> Patience { get; } = new("--patience")
    {
        HelpName = "T",
        Description = "t of patience: exit once t blocks in a row agree with their predecessor (default: the model file's)",
    };

    public Option<float?> Q { get; } = new("--q")
    {
        HelpName = "Q",
        Description = "q of q_exit: exit once the cumulative halting probability exceeds q (default: the model file's)",
    };

    public Option<bool> WithSets { get; } = new("--sets")
    {
        Description = "Also output each text's conformal prediction set, \"prediction_set\": the classes c with 1 − p_c ≤ q̂, q̂ calibrated on dev for the policy with its stored thresholds (coverage ≥ 1 − α); the model file must hold that calibration",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Q);
        command.Options.Add(WithSets);
        command.Options.Add(Policy);
        command.Options.Add(Tau);
        command.Options.Add(Kappa);
        command.Options.Add(Patience);
    }

    /// <summary>The policy the options name, thresholds from the options where given, else from the model file.</summary>
    public ExitPolicy Resolve(ParseResult parse, BeexModel model)
    {
        ExitPolicy policy = BuildFor(parse, model);
        if (ExitPolicy.ControllerOf(policy.Kind) is { } controller && !model.Mechanisms.Contains(controller))
            throw new CliException($"exit policy '{policy.Name}' needs the '{controller}' controller; this model carries {(model.Mechanisms.Count == 0 ? "no mechanisms" : string.Join(", ", model.Mechanisms))}");
        return policy;
    }

    private ExitPolicy BuildFor(ParseResult parse, BeexModel model) =>
        Build(parse.GetValue(Policy), parse.GetValue(Tau), parse.GetValue(Kappa), parse.GetValue(Patience), model.File.Config.Policy, model.File.Config.Thresholds,
            parse.GetValue(Q));

    /// <summary>
    /// Whether --sets was given; if so, the model must hold a conformal calibration for <paramref name="policy"/> with
    /// exactly these thresholds (q̂'s coverage holds for the thresholds it was calibrated with, not others).
    /// </summary>
    public bool Sets(ParseResult parse, BeexModel model, ExitPolicy policy)
    {
        if (!parse.GetValue(WithSets))
            return false;
        var calibrated = model.File.Config.Conformal;
        if (!calibrated.ContainsKey(policy.Name))
            throw new CliException(calibrated.Count == 0
                ? "--sets: the model file holds no conformal calibration"
                : $"--sets: the model file holds conformal calibrations for {string.Join(", ", calibrated.Keys)}, not for '{policy.Name}' (pick that --policy)");
        if (ModelBinding.PolicyFromConfig(model.File.Config, policy.Name) != policy)
            throw new CliException($"--sets: q̂ was calibrated for {ModelBinding.PolicyFromConfig(model.File.Config, policy.Name)}, not {policy}; drop the threshold options");
        return true;
    }

    /// <summary>
    /// Builds a policy from a name (null: <paramref name="defaultName"/>) and optional overrides; a threshold
    /// neither given nor stored is a usage error naming the option to pass.
    /// </summary>
    public static ExitPolicy Build(string? name, float? tau, float? kappa, int? patience, string defaultName,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> stored, float? q = null)
    {
        ExitPolicyKind kind;
        try
        {
            kind = ExitPolicy.ParseKind(name ?? defaultName);
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message + " (--policy)");
        }
        string policyName = ExitPolicy.NameOf(kind);
        stored.TryGetValue(policyName, out var values);
        double? Given(string key) => key switch { "tau" => tau, "kappa" => kappa, "t" => patience, "q" => q, _ => null };
        string Option(string key) => key == "t" ? "--patience" : "--" + key;
        if (ExitPolicy.ControllerOf(kind) is { } controller && !stored.ContainsKey(policyName) && tau is null && q is null)
            throw new CliException($"exit policy '{policyName}' stores no thresholds in this model file (does it carry the '{controller}' controller? see `binengine inspect`)");
        try
        {
            return ExitPolicy.Create(kind, key => Given(key) ?? (values is not null && values.TryGetValue(key, out double v)
                ? v
                : throw new CliException($"the model file stores no '{key}' for exit policy '{policyName}'; pass {Option(key)}")));
        }
        catch (ArgumentException e)
        {
            throw new CliException($"bad thresholds for exit policy '{policyName}': {e.Message}");
        }
    }
}
