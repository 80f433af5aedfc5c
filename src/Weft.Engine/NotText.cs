using System.Globalization;
using System.Text;
using System.Text.Unicode;

namespace Weft.Engine;

/// <summary>
/// Events whose strings are not text: a lone surrogate escape (<see cref="LoneSurrogates"/>), or bytes
/// that are not UTF-8. <c>Utf8JsonReader</c> checks neither as it reads: it throws
/// <see cref="InvalidOperationException"/> only when such a string is decoded, so readers of untrusted
/// events find both here, read the event with each repaired (as long, so offsets hold), and dead-letter
/// what they would have kept. Before, bytes that are not UTF-8 in a field a signal reads threw out of
/// the parser and failed the micro-batch: from the embedded log, at every start again.
/// </summary>
public static class NotText
{
    /// <summary>Whether <paramref name="json"/> holds a lone surrogate escape or bytes that are not UTF-8.</summary>
    public static bool Holds(ReadOnlySpan<byte> json) => LoneSurrogates.IndexOf(json) >= 0 || !Utf8.IsValid(json);

    /// <summary>
    /// A copy of <paramref name="json"/> with each lone surrogate escape replaced by <c>\ufffd</c> and
    /// each byte of an ill-formed UTF-8 sequence by <c>?</c>.
    /// </summary>
    public static byte[] Replaced(ReadOnlySpan<byte> json)
    {
        var copy = LoneSurrogates.IndexOf(json) >= 0 ? LoneSurrogates.Replaced(json) : json.ToArray();
        for (int at = InvalidUtf8(copy, 0, out int length); at >= 0; at = InvalidUtf8(copy, at + length, out length))
        {
            copy.AsSpan(at, length).Fill((byte)'?');
        }

        return copy;
    }

    /// <summary>The dead-letter reason of such an event: its first problem, and where.</summary>
    public static string Reason(ReadOnlySpan<byte> json)
    {
        int surrogate = LoneSurrogates.IndexOf(json);
        int bad = InvalidUtf8(json, 0, out _);
        return bad < 0 || (surrogate >= 0 && surrogate < bad)
            ? LoneSurrogates.Reason(json)
            : string.Create(CultureInfo.InvariantCulture, $"a string is not valid UTF-8: byte 0x{json[bad]:X2} at byte {bad + 1}");
    }

    /// <summary>The offset of the first ill-formed UTF-8 sequence in <paramref name="text"/>, or -1.</summary>
    public static int FirstInvalidUtf8(ReadOnlySpan<byte> text) => InvalidUtf8(text, 0, out _);

    /// <summary>The offset of the first ill-formed UTF-8 sequence at or after <paramref name="from"/>, or -1; <paramref name="length"/> its bytes.</summary>
    private static int InvalidUtf8(ReadOnlySpan<byte> json, int from, out int length)
    {
        length = 0;
        int ascii = json[from..].IndexOfAnyExceptInRange((byte)0, (byte)0x7F);
        if (ascii < 0)
        {
            return -1;
        }

        int i = from + ascii;
        while (i < json.Length)
        {
            if (Rune.DecodeFromUtf8(json[i..], out _, out int consumed) != System.Buffers.OperationStatus.Done)
            {
                length = consumed;
                return i;
            }

            i += consumed;
        }

        return -1;
    }
}
