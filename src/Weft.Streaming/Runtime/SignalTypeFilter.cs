using System.Text;

namespace Weft.Streaming.Runtime;

/// <summary>
/// Tells, from one scan of a raw record's top-level properties, which signals' parsers may take it:
/// those that include an event type the record names. A runtime with several signals used to hand every
/// record to every signal's parser, and a full parse of a record only to find its type is another
/// signal's cost as much as the parse that keeps it (three signals of one type each ran at two thirds
/// the rate of one signal of all three types).
/// </summary>
/// <remarks>
/// <para>It only narrows: a signal is left out only when the record is a JSON object whose every
/// property that may carry its event type (<c>event_type</c> and each raw property some event type maps
/// to it) is a plain, non-empty string (no escape, no control character), at least one is present, and none names
/// a type the signal includes. A parser resolves a record's type from those same properties, so it
/// would have skipped such a record as of another signal's type. Anything else (not an object, an
/// escaped property name, a type that is not a plain string, no type at all) goes to every signal, whose
/// parsers judge it exactly as before. One judgement changes: a signal reading its type only from
/// <c>event_type</c> called a record without one, whose type another signal reads from a property of
/// its own, a dead letter "missing event_type"; left out of such a record, it no longer does (the record
/// is the other signal's, and the route still dead-letters a record no signal includes). Values are skipped without being validated: a record the scan
/// passes but the JSON reader refuses is refused by the route too, which then dead-letters it once for
/// the stream whatever each signal's parser made of it.</para>
/// <para>At most 64 signals (a bit each); a runtime with more does not use the filter.</para>
/// </remarks>
internal sealed class SignalTypeFilter
{
    /// <summary>The most signals a filter tells apart.</summary>
    public const int MaxSignals = 64;

    private readonly byte[][] _typeProperties;
    private readonly byte[][] _typeNames;
    private readonly ulong[] _signalsOfType;

    /// <summary>A filter over signals given by the event type names each includes, in order (bit <c>i</c> is signal <c>i</c>).</summary>
    /// <param name="typesBySignal">Per signal, the names of the event types it includes.</param>
    /// <param name="typeAliases">The raw property names some event type maps to <c>event_type</c>.</param>
    public SignalTypeFilter(IReadOnlyList<IEnumerable<string>> typesBySignal, IEnumerable<string> typeAliases)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(typesBySignal.Count, MaxSignals);
        All = typesBySignal.Count == MaxSignals ? ulong.MaxValue : (1UL << typesBySignal.Count) - 1;
        var masks = new Dictionary<string, ulong>(StringComparer.Ordinal);
        for (int s = 0; s < typesBySignal.Count; s++)
        {
            foreach (var type in typesBySignal[s])
            {
                masks[type] = masks.GetValueOrDefault(type) | (1UL << s);
            }
        }

        _typeNames = [.. masks.Keys.Select(Encoding.UTF8.GetBytes)];
        _signalsOfType = [.. masks.Values];
        _typeProperties = [.. typeAliases.Prepend("event_type").Distinct(StringComparer.Ordinal).Select(Encoding.UTF8.GetBytes)];
    }

    /// <summary>Every signal's bit.</summary>
    public ulong All { get; }

    /// <summary>The signals whose parsers may take the record, a bit each; <see cref="All"/> when the scan cannot tell.</summary>
    public ulong SignalsFor(ReadOnlySpan<byte> json)
    {
        int i = SkipWhitespace(json, 0);
        if (i >= json.Length || json[i] != (byte)'{')
        {
            return All;
        }

        i = SkipWhitespace(json, i + 1);
        ulong signals = 0;
        bool named = false;
        while (i < json.Length && json[i] == (byte)'"')
        {
            int nameEnd = PlainStringEnd(json, i + 1);
            if (nameEnd < 0)
            {
                return All; // an escaped name may unescape to a type property
            }

            var name = json[(i + 1)..nameEnd];
            i = SkipWhitespace(json, nameEnd + 1);
            if (i >= json.Length || json[i] != (byte)':')
            {
                return All;
            }

            i = SkipWhitespace(json, i + 1);
            if (IsTypeProperty(name))
            {
                int valueEnd = i < json.Length && json[i] == (byte)'"' ? PlainStringEnd(json, i + 1) : -1;
                if (valueEnd <= i + 1)
                {
                    return All; // not a string, escaped, or empty (a parser's "missing event_type")
                }

                signals |= SignalsOfType(json[(i + 1)..valueEnd]);
                named = true;
                i = valueEnd + 1;
            }
            else
            {
                i = SkipValue(json, i);
                if (i < 0)
                {
                    return All;
                }
            }

            i = SkipWhitespace(json, i);
            if (i < json.Length && json[i] == (byte)',')
            {
                i = SkipWhitespace(json, i + 1);
                continue;
            }

            if (i < json.Length && json[i] == (byte)'}' && SkipWhitespace(json, i + 1) == json.Length)
            {
                return named ? signals : All;
            }

            return All;
        }

        return All;
    }

    private bool IsTypeProperty(ReadOnlySpan<byte> name)
    {
        foreach (var property in _typeProperties)
        {
            if (name.SequenceEqual(property))
            {
                return true;
            }
        }

        return false;
    }

    private ulong SignalsOfType(ReadOnlySpan<byte> type)
    {
        for (int t = 0; t < _typeNames.Length; t++)
        {
            if (type.SequenceEqual(_typeNames[t]))
            {
                return _signalsOfType[t];
            }
        }

        return 0;
    }

    private static int SkipWhitespace(ReadOnlySpan<byte> json, int i)
    {
        while (i < json.Length && json[i] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
        {
            i++;
        }

        return i;
    }

    /// <summary>The closing quote of a string whose content starts at <paramref name="start"/>, or -1 at an escape, a control character or the end.</summary>
    private static int PlainStringEnd(ReadOnlySpan<byte> json, int start)
    {
        for (int i = start; i < json.Length; i++)
        {
            byte b = json[i];
            if (b == (byte)'"')
            {
                return i;
            }

            if (b == (byte)'\\' || b < 0x20)
            {
                return -1;
            }
        }

        return -1;
    }

    /// <summary>Just past the value starting at <paramref name="i"/> (strings with escapes, nested objects and arrays), or -1 when it does not end.</summary>
    private static int SkipValue(ReadOnlySpan<byte> json, int i)
    {
        int depth = 0;
        while (i < json.Length)
        {
            switch (json[i])
            {
                case (byte)'"':
                    i++;
                    while (i < json.Length && json[i] != (byte)'"')
                    {
                        i += json[i] == (byte)'\\' ? 2 : 1;
                    }

                    if (i >= json.Length)
                    {
                        return -1;
                    }

                    i++;
                    break;
                case (byte)'{' or (byte)'[':
                    depth++;
                    i++;
                    break;
                case (byte)'}' or (byte)']':
                    if (depth == 0)
                    {
                        return i; // the enclosing object's end: a scalar value ended before it
                    }

                    depth--;
                    i++;
                    break;
                case (byte)',' when depth == 0:
                    return i;
                default:
                    i++;
                    break;
            }

            if (depth == 0 && i > 0 && json[i - 1] is (byte)'"' or (byte)'}' or (byte)']')
            {
                return i;
            }
        }

        return depth == 0 ? i : -1;
    }
}
