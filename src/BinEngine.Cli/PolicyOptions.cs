using System.CommandLine;
using BinEngine.Runtime;

namespace BinEngine.Cli;

/// <summary>
/// The exit-policy options shared by classify, batch and eval: --policy picks a rule, and --tau, --kappa,
/// --patience override the thresholds the model file stores for it.
/// </summary>
internal sealed class PolicyOptions
{
    public Option<string?> Policy { get; } = new("--policy")
    {
        Description = "Exit policy: entropy_reduction, entropy, normalized_entropy, confidence, patience or none (default: the model file's)",
        HelpName = "NAME",
    };

    public Option<float?> Tau { get; } = new("--tau")
    {
        HelpName = "TAU",
        Description = "τ of the policy (entropy_reduction: bound on the fractional entropy drop; entropy, normalized_entropy: entropy bound; confidence: probability bound); default: the model file's",
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

    public void AddTo(Command command)
    {
        command.Options.Add(Policy);
        command.Options.Add(Tau);
        command.Options.Add(Kappa);
        command.Options.Add(Patience);
    }

    /// <summary>The policy the options name, thresholds from the options where given, else from the model file.</summary>
    public ExitPolicy Resolve(ParseResult parse, BeexModel model) =>
        Build(parse.GetValue(Policy), parse.GetValue(Tau), parse.GetValue(Kappa), parse.GetValue(Patience), model.File.Config.Policy, model.File.Config.Thresholds);

    /// <summary>
    /// Builds a policy from a name (null: <paramref name="defaultName"/>) and optional overrides; a threshold
    /// neither given nor stored is a usage error naming the option to pass.
    /// </summary>
    public static ExitPolicy Build(string? name, float? tau, float? kappa, int? patience, string defaultName,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> stored)
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
        double? Given(string key) => key switch { "tau" => tau, "kappa" => kappa, "t" => patience, _ => null };
        string Option(string key) => key == "t" ? "--patience" : "--" + key;
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
