using System.Globalization;

namespace Weft.Engine;

/// <summary>
/// Text from outside — a request, a producer's key, a command line — as messages, logs and terminals
/// show it: bounded, and with what would act on a terminal rather than show escaped.
/// </summary>
public static class DisplayText
{
    /// <summary>At most <paramref name="max"/> characters, cut between whole characters (never inside a surrogate pair), with "…" when cut.</summary>
    public static string Cut(string text, int max = 64)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Length <= max ? text : string.Concat(text.AsSpan(0, char.IsHighSurrogate(text[max - 1]) ? max - 1 : max), "…");
    }

    /// <summary>
    /// Whether <paramref name="c"/> would act on a terminal or log rather than show: controls, and the
    /// format characters and separators that reorder or break a line (U+202E, U+2028).
    /// </summary>
    public static bool Hidden(char c) =>
        char.IsControl(c) || char.GetUnicodeCategory(c) is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;

    /// <summary><paramref name="text"/> with each <see cref="Hidden"/> character as <c>\uXXXX</c>.</summary>
    public static string Escaped(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Any(Hidden) ? string.Concat(text.Select(c => Hidden(c) ? $"\\u{(int)c:x4}" : c.ToString())) : text;
    }
}
