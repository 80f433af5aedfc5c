using System.Buffers;
using System.Text;

namespace Weft.Streaming.Runtime;

/// <summary>
/// Tells, from one scan of a raw record's top-level properties, which signals' parsers may take it:
/// those that include an event type the record names. A runtime with several signals used to hand every
/// record to every signal's parser, and a full parse of a record only to find its type is another
/// signal's cost as much as the parse that keeps it (three signals of one type each ran at 0.67–0.91 of
/// the rate they reach with this filter; docs/PERFORMANCE.md, "Multi-signal streams").
/// </summary>
/// <remarks>
/// <para>It only narrows: a signal is left out only when the record is a JSON object whose every
/// property that may carry its event type (<c>event_type</c> and each raw property some event type maps
/// to it) is a plain, non-empty string (no escape, no control character), at least one is present, and
/// none names a type the signal includes. A parser resolves a record's type from those same properties, so it
/// would have skipped such a record as of another signal's type. Anything else (not an object, an
/// escaped property name, a type that is not a plain string, no type at all) goes to every signal, whose
/// parsers judge it exactly as before. One judgement changes: a signal reading its type only from
/// <c>event_type</c> called a record without one, whose type another signal reads from a property of
/// its own, a dead letter "missing event_type"; left out of such a record, it no longer does (the record
/// is the other signal's, and the route still dead-letters a record no signal includes). Values are
/// skipped without being validated: a record the scan passes but the JSON reader refuses is refused by
/// the route too, which then dead-letters it once for the stream whatever each signal's parser made of
/// it.</para>
/// <para>At most 64 signals (a bit each); a runtime with more does not use the filter.</para>
/// </remarks>
internal sealed class SignalTypeFilter
{
    /// <summary>The most signals a filter tells apart.</summary>
    public const int MaxSignals = 64;

    // The scan looks at bytes only where the structure may change, and finds them vectorized.
    private static readonly SearchValues<byte> PlainStringStops = SearchValues.Create([(byte)'"', (byte)'\\', .. Enumerable.Range(0, 0x20).Select(b => (byte)b)]);
    private static readonly SearchValues<byte> Structural = SearchValues.Create("\"{}[]"u8);
    private static readonly SearchValues<byte> ScalarEnds = SearchValues.Create(",}] \t\r\n"u8);
    private static readonly SearchValues<byte> NestedOrEscaped = SearchValues.Create("{[\\"u8);

    private readonly byte[][] _typeProperties;
    private readonly byte[][] _quotedTypeProperties; // each in its quotes, as a flat record holds it
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
        _quotedTypeProperties = [.. _typeProperties.Select(p => (byte[])[(byte)'"', .. p, (byte)'"'])];
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

        // Most records are flat objects without escapes: there, no string holds a quote, so every
        // "<type property>" followed by a colon is a top-level name, and a few vectorized searches
        // find them all. Nested values or escapes anywhere take the scan property by property.
        var rest = json[(i + 1)..];
        return rest.IndexOfAny(NestedOrEscaped) < 0 ? SignalsForFlat(rest) : SignalsForAny(json, i);
    }

    /// <summary><see cref="SignalsFor"/> for an object's content after its opening brace, holding no brace, bracket or backslash.</summary>
    private ulong SignalsForFlat(ReadOnlySpan<byte> content)
    {
        ulong signals = 0;
        bool named = false;
        foreach (var property in _quotedTypeProperties)
        {
            int from = 0;
            while (true)
            {
                int at = content[from..].IndexOf(property);
                if (at < 0)
                {
                    break;
                }

                int i = SkipWhitespace(content, from + at + property.Length);
                from += at + 1;
                if (i >= content.Length || content[i] != (byte)':')
                {
                    continue; // a string value that reads like the name
                }

                if (TypeValueEnd(content, SkipWhitespace(content, i + 1), ref signals) < 0)
                {
                    return All;
                }

                named = true;
            }
        }

        return named ? signals : All;
    }

    /// <summary><see cref="SignalsFor"/> property by property, for an object whose opening brace is at <paramref name="i"/>.</summary>
    private ulong SignalsForAny(ReadOnlySpan<byte> json, int i)
    {
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
                i = TypeValueEnd(json, i, ref signals);
                if (i < 0)
                {
                    return All;
                }

                named = true;
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

    /// <summary>
    /// Adds the signals of the type named by the value at <paramref name="i"/> and returns the index just
    /// past it; -1 when the value is not a plain non-empty string (not a string, escaped, or empty: a
    /// parser's "missing event_type"), so the scan cannot tell.
    /// </summary>
    private int TypeValueEnd(ReadOnlySpan<byte> json, int i, ref ulong signals)
    {
        int end = i < json.Length && json[i] == (byte)'"' ? PlainStringEnd(json, i + 1) : -1;
        if (end <= i + 1)
        {
            return -1;
        }

        signals |= SignalsOfType(json[(i + 1)..end]);
        return end + 1;
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
        int k = json[start..].IndexOfAny(PlainStringStops);
        return k >= 0 && json[start + k] == (byte)'"' ? start + k : -1;
    }

    /// <summary>Just past the value starting at <paramref name="i"/> (strings with escapes, nested objects and arrays), or -1 when it does not end.</summary>
    private static int SkipValue(ReadOnlySpan<byte> json, int i)
    {
        if (i >= json.Length)
        {
            return -1;
        }

        switch (json[i])
        {
            case (byte)'"':
                return SkipString(json, i + 1);
            case (byte)'{' or (byte)'[':
                int depth = 0;
                while (true)
                {
                    int k = json[i..].IndexOfAny(Structural);
                    if (k < 0)
                    {
                        return -1;
                    }

                    i += k;
                    switch (json[i])
                    {
                        case (byte)'"':
                            i = SkipString(json, i + 1);
                            if (i < 0)
                            {
                                return -1;
                            }

                            break;
                        case (byte)'{' or (byte)'[':
                            depth++;
                            i++;
                            break;
                        default:
                            depth--;
                            i++;
                            if (depth == 0)
                            {
                                return i;
                            }

                            break;
                    }
                }

            default:
                // A number or a literal: it holds none of the bytes that end it.
                int end = json[i..].IndexOfAny(ScalarEnds);
                return end < 0 ? json.Length : i + end;
        }
    }

    /// <summary>Just past the closing quote of a string whose content starts at <paramref name="i"/>, escapes skipped; -1 when it never closes.</summary>
    private static int SkipString(ReadOnlySpan<byte> json, int i)
    {
        while (true)
        {
            int k = json[i..].IndexOfAny((byte)'"', (byte)'\\');
            if (k < 0)
            {
                return -1;
            }

            i += k;
            if (json[i] == (byte)'"')
            {
                return i + 1;
            }

            i += 2;
            if (i > json.Length)
            {
                return -1;
            }
        }
    }
}
