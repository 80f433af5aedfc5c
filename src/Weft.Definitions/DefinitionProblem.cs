namespace Weft.Definitions;

/// <summary>One problem in a definition, located by its JSON path, with a hint on how to fix it.</summary>
public sealed record DefinitionProblem(string Path, string Message, string? Hint = null)
{
    public override string ToString() => Hint is null ? $"{Path}: {Message}" : $"{Path}: {Message} (hint: {Hint})";
}

/// <summary>Thrown when a definition built from C# is invalid; carries every problem at once.</summary>
public sealed class DefinitionException : Exception
{
    public DefinitionException(string subject, IReadOnlyList<DefinitionProblem> problems)
        : base($"{subject} has {problems.Count} problem(s):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", problems))
    {
        Problems = problems;
    }

    public IReadOnlyList<DefinitionProblem> Problems { get; }
}

/// <summary>Compact, canonical durations: "250ms", "5s", "15m", "6h", "30d".</summary>
public static class Durations
{
    public static string Format(TimeSpan value)
    {
        long ms = (long)value.TotalMilliseconds;
        if (ms % 86_400_000 == 0 && ms != 0)
        {
            return $"{ms / 86_400_000}d";
        }

        if (ms % 3_600_000 == 0 && ms != 0)
        {
            return $"{ms / 3_600_000}h";
        }

        if (ms % 60_000 == 0 && ms != 0)
        {
            return $"{ms / 60_000}m";
        }

        return ms % 1000 == 0 ? $"{ms / 1000}s" : $"{ms}ms";
    }

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        int i = 0;
        while (i < text.Length && char.IsAsciiDigit(text[i]))
        {
            i++;
        }

        if (i == 0 || i > 15 || !long.TryParse(text.AsSpan(0, i), System.Globalization.CultureInfo.InvariantCulture, out long n))
        {
            return false;
        }

        long? unitMs = text[i..] switch
        {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => null,
        };
        // Fifteen digits are as many as a TimeSpan's milliseconds take; of a larger unit they overflow it: no duration, not an exception
        // out of weft validate.
        if (unitMs is null || n > (long)TimeSpan.MaxValue.TotalMilliseconds / unitMs.Value)
        {
            return false;
        }

        value = TimeSpan.FromMilliseconds(n * unitMs.Value);
        return true;
    }
}
