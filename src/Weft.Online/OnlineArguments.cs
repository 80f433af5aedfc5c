using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Weft.Online;

/// <summary>Argument checks shared by the stores, so both reject the same inputs with the same words.</summary>
internal static class OnlineArguments
{
    public static void Signal(string signal)
    {
        ArgumentNullException.ThrowIfNull(signal);
        if (!IsStorableKey(signal))
        {
            ThrowBadName(nameof(signal), signal, "a signal name");
        }
    }

    public static void Elements(IReadOnlyList<OnlineElement> elements)
    {
        ArgumentNullException.ThrowIfNull(elements);
        for (var i = 0; i < elements.Count; i++)
        {
            var element = elements[i];
            if (element.EventId is null || element.Payload is null || !IsStorableText(element.EventId) || IsTooLong(element.EventId))
            {
                ThrowBadElement(i, element);
            }
        }
    }

    public static void Checkpoint(SourceCheckpoint? checkpoint)
    {
        if (checkpoint is null)
        {
            return;
        }

        ArgumentNullException.ThrowIfNull(checkpoint.Offsets, "checkpoint.Offsets");
        Consumer(checkpoint.Consumer, "checkpoint.Consumer");
        foreach (var (partition, _) in checkpoint.Offsets)
        {
            if (!IsStorableKey(partition))
            {
                ThrowBadName("checkpoint.Offsets", partition, "a partition name");
            }
        }
    }

    public static void Consumer(string consumer, string argument = "consumer")
    {
        ArgumentNullException.ThrowIfNull(consumer, argument);
        if (!IsStorableKey(consumer))
        {
            ThrowBadName(argument, consumer, "a consumer name");
        }
    }

    /// <summary>
    /// The longest event id a store takes, in UTF-8 bytes (the stream's parsers dead-letter longer ones):
    /// PostgreSQL's key index refuses an entry past ~2.7 kB with an error that names no element, while
    /// SQLite would store it, so both refuse it here, naming the element.
    /// </summary>
    public const int MaxEventIdBytes = 1024;

    private static bool IsTooLong(string eventId) =>
        eventId.Length > MaxEventIdBytes / 3 && Encoding.UTF8.GetByteCount(eventId) > MaxEventIdBytes;

    public static void Keep(int keep) => ArgumentOutOfRangeException.ThrowIfNegative(keep);

    /// <summary>Non-empty text that both stores keep exactly.</summary>
    private static bool IsStorableKey(string value) => value.Length > 0 && IsStorableText(value);

    /// <summary>No U+0000 (PostgreSQL text cannot hold it) and no unpaired surrogate (not valid UTF-8).</summary>
    internal static bool IsStorableText(string value)
    {
        var span = value.AsSpan();
        if (span.Contains('\0'))
        {
            return false;
        }

        var i = span.IndexOfAnyInRange('\uD800', '\uDFFF');
        if (i < 0)
        {
            return true;
        }

        for (; i < span.Length; i++)
        {
            if (char.IsHighSurrogate(span[i]))
            {
                if (i + 1 >= span.Length || !char.IsLowSurrogate(span[i + 1]))
                {
                    return false;
                }

                i++;
            }
            else if (char.IsLowSurrogate(span[i]))
            {
                return false;
            }
        }

        return true;
    }

    [DoesNotReturn]
    private static void ThrowBadName(string argument, string value, string what) =>
        throw new ArgumentException($"{argument} '{value.Replace("\0", "\\0", StringComparison.Ordinal)}' is not usable as {what}: it must be non-empty, without U+0000 or unpaired surrogates.", argument);

    [DoesNotReturn]
    private static void ThrowBadElement(int index, OnlineElement element)
    {
        var problem = element.EventId is null ? "its EventId is null"
            : element.Payload is null ? "its Payload is null"
            : !IsStorableText(element.EventId) ? "its EventId contains U+0000 or an unpaired surrogate"
            : $"its EventId is longer than {MaxEventIdBytes} bytes in UTF-8 ({Encoding.UTF8.GetByteCount(element.EventId)})";
        throw new ArgumentException($"elements[{index}] (user {element.UserId}, event time {element.EventTimeMicros}) cannot be stored: {problem}.", "elements");
    }
}
