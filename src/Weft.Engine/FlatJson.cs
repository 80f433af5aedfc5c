using System.Buffers;

namespace Weft.Engine;

/// <summary>
/// Scanning for the parser's fast path: the pieces of a flat JSON object of ASCII strings without
/// escapes, numbers and literals. Each accepts a strict subset of what <see cref="System.Text.Json.Utf8JsonReader"/>
/// accepts and answers "not here" (a negative index) for anything else, so the caller hands the event to
/// the reader, which then decides it exactly as before.
/// </summary>
internal static class FlatJson
{
    // Bytes that end the fast scan of a string: its closing quote, and every byte the reader treats
    // specially (an escape, a control character the reader rejects, non-ASCII it would check).
    private static readonly SearchValues<byte> StringStops = SearchValues.Create(StopBytes());

    private static byte[] StopBytes()
    {
        var stops = new List<byte> { (byte)'"', (byte)'\\' };
        for (int b = 0; b < 0x20; b++)
        {
            stops.Add((byte)b);
        }

        for (int b = 0x80; b <= 0xFF; b++)
        {
            stops.Add((byte)b);
        }

        return [.. stops];
    }

    /// <summary>The index of the first byte at or after <paramref name="i"/> that is not JSON whitespace.</summary>
    public static int SkipWhitespace(ReadOnlySpan<byte> json, int i)
    {
        while (i < json.Length && json[i] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
        {
            i++;
        }

        return i;
    }

    /// <summary>
    /// The index of the closing quote of a string whose content starts at <paramref name="start"/>,
    /// or -1 when the content holds an escape, a control character or a non-ASCII byte, or never closes.
    /// </summary>
    public static int StringEnd(ReadOnlySpan<byte> json, int start)
    {
        if (start > json.Length)
        {
            return -1;
        }

        int stop = json[start..].IndexOfAny(StringStops);
        return stop >= 0 && json[start + stop] == (byte)'"' ? start + stop : -1;
    }

    /// <summary>
    /// The index just past a number starting at <paramref name="i"/> (JSON's grammar:
    /// <c>-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?</c>), or -1 when it does not match. What follows
    /// is the caller's to check.
    /// </summary>
    public static int NumberEnd(ReadOnlySpan<byte> json, int i)
    {
        if (i < json.Length && json[i] == (byte)'-')
        {
            i++;
        }

        if (i >= json.Length || !IsDigit(json[i]))
        {
            return -1;
        }

        i = json[i] == (byte)'0' ? i + 1 : Digits(json, i);
        if (i < json.Length && json[i] == (byte)'.')
        {
            if (++i >= json.Length || !IsDigit(json[i]))
            {
                return -1;
            }

            i = Digits(json, i);
        }

        if (i < json.Length && json[i] is (byte)'e' or (byte)'E')
        {
            if (++i < json.Length && json[i] is (byte)'+' or (byte)'-')
            {
                i++;
            }

            if (i >= json.Length || !IsDigit(json[i]))
            {
                return -1;
            }

            i = Digits(json, i);
        }

        return i;
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    private static int Digits(ReadOnlySpan<byte> json, int i)
    {
        while (i < json.Length && IsDigit(json[i]))
        {
            i++;
        }

        return i;
    }
}
