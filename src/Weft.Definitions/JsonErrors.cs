using System.Text.Json;

namespace Weft.Definitions;

/// <summary>System.Text.Json's parse errors in the words a person reads.</summary>
public static class JsonErrors
{
    /// <summary>
    /// The message without System.Text.Json's trailers: a zero-based "LineNumber: 0 | BytePositionInLine: 5"
    /// (which would contradict the one-based position a caller gives), a "Path:" and advice about reader
    /// options the caller does not control.
    /// </summary>
    public static string Message(JsonException ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        string message = ex.Message;
        foreach (var trailer in (ReadOnlySpan<string>)[" Path: ", " LineNumber: ", " Change the reader options."])
        {
            int cut = message.IndexOf(trailer, StringComparison.Ordinal);
            if (cut >= 0)
            {
                message = message[..cut];
            }
        }

        return message.TrimEnd();
    }

    /// <summary>"line 1, byte 6: message", both one-based.</summary>
    public static string Where(JsonException ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return $"line {(ex.LineNumber ?? 0) + 1}, byte {(ex.BytePositionInLine ?? 0) + 1}: {Message(ex)}";
    }
}
