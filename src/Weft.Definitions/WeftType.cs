namespace Weft.Definitions;

/// <summary>The scalar kinds a column or expression can have.</summary>
public enum ScalarKind
{
    Bool,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    /// <summary>UTC instant, microseconds since the Unix epoch.</summary>
    Timestamp,
}

/// <summary>A column type: a scalar, or a list of scalars (sequence columns, embeddings).</summary>
public readonly record struct WeftType(ScalarKind Kind, bool IsList = false)
{
    public static readonly WeftType Bool = new(ScalarKind.Bool);
    public static readonly WeftType Int32 = new(ScalarKind.Int32);
    public static readonly WeftType Int64 = new(ScalarKind.Int64);
    public static readonly WeftType Float32 = new(ScalarKind.Float32);
    public static readonly WeftType Float64 = new(ScalarKind.Float64);
    public static readonly WeftType String = new(ScalarKind.String);
    public static readonly WeftType Timestamp = new(ScalarKind.Timestamp);

    public static WeftType ListOf(ScalarKind element) => new(element, IsList: true);

    public bool IsNumeric => !IsList && Kind is ScalarKind.Int32 or ScalarKind.Int64 or ScalarKind.Float32 or ScalarKind.Float64;

    public bool IsInteger => !IsList && Kind is ScalarKind.Int32 or ScalarKind.Int64;

    public WeftType Element => new(Kind);

    public override string ToString() => IsList ? $"list<{KindName(Kind)}>" : KindName(Kind);

    public static string KindName(ScalarKind kind) => kind switch
    {
        ScalarKind.Bool => "bool",
        ScalarKind.Int32 => "int32",
        ScalarKind.Int64 => "int64",
        ScalarKind.Float32 => "float32",
        ScalarKind.Float64 => "float64",
        ScalarKind.String => "string",
        ScalarKind.Timestamp => "timestamp",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public static bool TryParse(string? text, out WeftType type)
    {
        type = default;
        if (text is null)
        {
            return false;
        }

        if (text.StartsWith("list<", StringComparison.Ordinal) && text.EndsWith('>'))
        {
            if (TryParseKind(text[5..^1], out var element))
            {
                type = ListOf(element);
                return true;
            }

            return false;
        }

        if (TryParseKind(text, out var kind))
        {
            type = new WeftType(kind);
            return true;
        }

        return false;
    }

    private static bool TryParseKind(string text, out ScalarKind kind)
    {
        switch (text)
        {
            case "bool": kind = ScalarKind.Bool; return true;
            case "int32": kind = ScalarKind.Int32; return true;
            case "int64": kind = ScalarKind.Int64; return true;
            case "float32": kind = ScalarKind.Float32; return true;
            case "float64": kind = ScalarKind.Float64; return true;
            case "string": kind = ScalarKind.String; return true;
            case "timestamp": kind = ScalarKind.Timestamp; return true;
            default: kind = default; return false;
        }
    }

    /// <summary>The names accepted in JSON, for hints.</summary>
    public const string AcceptedNames = "bool, int32, int64, float32, float64, string, timestamp, list<T> of any of these";

    /// <summary>Rough encoded size of one value, used for the bytes-per-user budget.</summary>
    public int EstimatedBytes(int listLength) => (IsList ? Math.Max(listLength, 1) : 1) * Kind switch
    {
        ScalarKind.Bool => 1,
        ScalarKind.Int32 or ScalarKind.Float32 => 4,
        ScalarKind.String => 16,
        _ => 8,
    };
}
