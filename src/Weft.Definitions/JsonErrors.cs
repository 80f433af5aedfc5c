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

    /// <summary>
    /// The one-based byte of <paramref name="json"/> where the parse failed: the exception counts bytes
    /// within a line, and a record (a Kafka value, a pretty-printed event) may span several.
    /// </summary>
    public static long BytePosition(ReadOnlySpan<byte> json, JsonException ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        long line = ex.LineNumber ?? 0, start = 0;
        for (int i = 0; i < json.Length && line > 0; i++)
        {
            if (json[i] == (byte)'\n')
            {
                line--;
                start = i + 1;
            }
        }

        return start + (ex.BytePositionInLine ?? 0) + 1;
    }

    /// <summary>"line 1, byte 6: message", both one-based.</summary>
    public static string Where(JsonException ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return $"line {(ex.LineNumber ?? 0) + 1}, byte {(ex.BytePositionInLine ?? 0) + 1}: {Message(ex)}";
    }

    /// <summary>
    /// Adds a problem for every string or property name that does not decode (the parser checks UTF-8
    /// and escapes only when a value is read, and then throws) and every object that repeats a
    /// property (readers disagree on which value wins; System.Text.Json keeps the last, silently).
    /// False when anything was added.
    /// </summary>
    public static bool CheckText(JsonElement element, string path, List<DefinitionProblem> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        int before = problems.Count;
        Walk(element, path);
        return problems.Count == before;

        void Walk(JsonElement e, string path)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.String:
                    if (!Decodes(() => e.GetString()))
                    {
                        problems.Add(new DefinitionProblem(path, "invalid Unicode: bytes that are not UTF-8, or an unpaired surrogate escape such as \\ud800"));
                    }

                    break;
                case JsonValueKind.Array:
                    int i = 0;
                    foreach (var item in e.EnumerateArray())
                    {
                        Walk(item, $"{path}[{i++}]");
                    }

                    break;
                case JsonValueKind.Object:
                    var seen = new HashSet<string>(StringComparer.Ordinal);
                    int n = 0;
                    foreach (var p in e.EnumerateObject())
                    {
                        string? name = null;
                        if (!Decodes(() => name = p.Name))
                        {
                            problems.Add(new DefinitionProblem(path, $"the name of property {n + 1} is invalid Unicode: bytes that are not UTF-8, or an unpaired surrogate escape"));
                        }
                        else if (!seen.Add(name!))
                        {
                            problems.Add(new DefinitionProblem($"{path}.{name}", $"duplicate property '{name}'", "JSON readers disagree on which of two values wins; keep one"));
                        }
                        else
                        {
                            Walk(p.Value, $"{path}.{name}");
                        }

                        n++;
                    }

                    break;
            }
        }

        static bool Decodes(Action read)
        {
            try
            {
                read();
                return true;
            }
            catch (InvalidOperationException)
            {
                return false;
            }
        }
    }
}
