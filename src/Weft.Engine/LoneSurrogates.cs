using System.Text;

namespace Weft.Engine;

/// <summary>
/// JSON string escapes that decode to an unpaired UTF-16 surrogate (<c>"\ud800"</c>): valid JSON, not
/// text. System.Text.Json throws <see cref="InvalidOperationException"/> wherever such a string is
/// decoded (a value, a property name, even a name comparison), so readers of untrusted events find
/// them here, read the event with each replaced by U+FFFD, and dead-letter what they would have kept.
/// </summary>
public static class LoneSurrogates
{
    /// <summary>
    /// The byte offset of the first <c>\uXXXX</c> escape in <paramref name="json"/> that decodes to an
    /// unpaired UTF-16 surrogate, or -1. Escapes are only legal inside strings, so a scan of the bytes
    /// (which steps over every other escape, <c>\\</c> included) finds exactly the string escapes.
    /// </summary>
    public static int IndexOf(ReadOnlySpan<byte> json) => NextLoneSurrogate(json, 0, out _);

    /// <summary>A copy of <paramref name="json"/> with each lone surrogate escape replaced by <c>\ufffd</c> (as long, so offsets hold).</summary>
    public static byte[] Replaced(ReadOnlySpan<byte> json)
    {
        var copy = json.ToArray();
        int at = NextLoneSurrogate(copy, 0, out int length);
        while (at >= 0)
        {
            "\\ufffd"u8.CopyTo(copy.AsSpan(at, 6));
            at = NextLoneSurrogate(copy, at + length, out length);
        }

        return copy;
    }

    /// <summary>The dead-letter reason of an event with a lone surrogate escape: which escape, where.</summary>
    public static string Reason(ReadOnlySpan<byte> json)
    {
        int at = IndexOf(json);
        return $"a string is not valid Unicode: unpaired surrogate escape {Encoding.ASCII.GetString(json.Slice(at, 6))} at byte {at + 1}";
    }

    private static int NextLoneSurrogate(ReadOnlySpan<byte> json, int from, out int length)
    {
        length = 0;
        int i = from;
        while (i < json.Length)
        {
            int slash = json[i..].IndexOf((byte)'\\');
            if (slash < 0)
            {
                return -1;
            }

            i += slash;
            if (i + 1 >= json.Length || json[i + 1] != (byte)'u' || !TryHex4(json, i + 2, out int unit))
            {
                i += 2; // any other escape, or a truncated one the reader refuses anyway
                continue;
            }

            if (char.IsHighSurrogate((char)unit))
            {
                if (i + 12 <= json.Length && json[i + 6] == (byte)'\\' && json[i + 7] == (byte)'u'
                    && TryHex4(json, i + 8, out int low) && char.IsLowSurrogate((char)low))
                {
                    i += 12;
                    continue;
                }

                length = 6;
                return i;
            }

            if (char.IsLowSurrogate((char)unit))
            {
                length = 6;
                return i;
            }

            i += 6;
        }

        return -1;
    }

    private static bool TryHex4(ReadOnlySpan<byte> json, int at, out int value)
    {
        value = 0;
        if (at + 4 > json.Length)
        {
            return false;
        }

        for (int k = at; k < at + 4; k++)
        {
            int digit = HexDigit(json[k]);
            if (digit < 0)
            {
                return false;
            }

            value = (value << 4) | digit;
        }

        return true;
    }

    private static int HexDigit(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
