using System.Globalization;

namespace BinEngine.Format;

/// <summary>The type of a metadata value (the code is the on-disk value).</summary>
internal enum MetadataValueType : uint
{
    /// <summary>Signed 64-bit integer.</summary>
    Int64 = 1,
    /// <summary>IEEE 754 binary64.</summary>
    Float64 = 2,
    /// <summary>One byte, 0 or 1.</summary>
    Bool = 3,
    /// <summary>UTF-8 string.</summary>
    String = 4,
    /// <summary>Array of UTF-8 strings.</summary>
    StringArray = 5,
    /// <summary>Array of signed 64-bit integers.</summary>
    Int64Array = 6,
    /// <summary>Array of binary64 values.</summary>
    Float64Array = 7,
}

/// <summary>One typed metadata value. Immutable.</summary>
internal sealed class MetadataValue
{
    private readonly object _value;

    private MetadataValue(MetadataValueType type, object value)
    {
        Type = type;
        _value = value;
    }

    /// <summary>The value's type.</summary>
    public MetadataValueType Type { get; }

    /// <summary>The boxed value: long, double, bool, string, string[], long[] or double[].</summary>
    public object Value => _value;

    /// <summary>An integer value.</summary>
    public static MetadataValue FromInt64(long value) => new(MetadataValueType.Int64, value);

    /// <summary>A floating-point value.</summary>
    public static MetadataValue FromFloat64(double value) => new(MetadataValueType.Float64, value);

    /// <summary>A Boolean value.</summary>
    public static MetadataValue FromBool(bool value) => new(MetadataValueType.Bool, value);

    /// <summary>A string value.</summary>
    public static MetadataValue FromString(string value) => new(MetadataValueType.String, value ?? throw new ArgumentNullException(nameof(value)));

    /// <summary>A string array (copied).</summary>
    public static MetadataValue FromStringArray(IEnumerable<string> values) => new(MetadataValueType.StringArray, values.ToArray());

    // The reader's arrays are fresh and never escape elsewhere: no second copy of a 30k-token vocabulary.
    internal static MetadataValue OwningStringArray(string[] values) => new(MetadataValueType.StringArray, values);
    internal static MetadataValue OwningInt64Array(long[] values) => new(MetadataValueType.Int64Array, values);
    internal static MetadataValue OwningFloat64Array(double[] values) => new(MetadataValueType.Float64Array, values);

    /// <summary>An integer array (copied).</summary>
    public static MetadataValue FromInt64Array(IEnumerable<long> values) => new(MetadataValueType.Int64Array, values.ToArray());

    /// <summary>A floating-point array (copied).</summary>
    public static MetadataValue FromFloat64Array(IEnumerable<double> values) => new(MetadataValueType.Float64Array, values.ToArray());

    /// <summary>The value as text, arrays shortened to their first <paramref name="maxItems"/> items.</summary>
    public string ToDisplayString(int maxItems = 8)
    {
        static string F(double d) => d.ToString("R", CultureInfo.InvariantCulture);
        return _value switch
        {
            long l => l.ToString(CultureInfo.InvariantCulture),
            double d => F(d),
            bool b => b ? "true" : "false",
            string s => s,
            string[] a => Join(a.Select(x => "\"" + x + "\""), a.Length, maxItems),
            long[] a => Join(a.Select(x => x.ToString(CultureInfo.InvariantCulture)), a.Length, maxItems),
            double[] a => Join(a.Select(F), a.Length, maxItems),
            _ => "?",
        };
    }

    private static string Join(IEnumerable<string> items, int count, int max) =>
        "[" + string.Join(", ", items.Take(max)) + (count > max ? $", … ({count} items)]" : "]");

    /// <inheritdoc/>
    public override string ToString() => ToDisplayString();
}
