using System.Buffers.Binary;
using System.Text;

namespace Weft.Migration;

/// <summary>
/// Which source serves an event type to a user during a cutover. A user falls in one of 10,000
/// buckets by a hash of (signal, event type, user id) and reads the event type from Weft when the
/// bucket is below percent × 100: sticky (the same user, the same answer, on every server and in
/// every language that computes the hash) and monotone (raising the percent only moves users to
/// Weft). The hash is FNV-1a 64 over the UTF-8 bytes of <c>signal</c>, a 0 byte, <c>event_type</c>,
/// a 0 byte and the user id as 8 little-endian bytes; the bucket is the hash modulo 10,000.
/// </summary>
public static class MigrationRouting
{
    /// <summary>The route a consumer without one of its own follows.</summary>
    public const string DefaultConsumer = "*";

    public const int Buckets = 10_000;

    /// <summary>The longest consumer name (a route key, and a column of every exposure logged).</summary>
    public const int MaxConsumerLength = 100;

    /// <summary>
    /// A consumer name as text may show it: a name recorded before <see cref="ConsumerProblem"/>'s rule
    /// may hold control characters, shown as <c>\uXXXX</c> instead of reaching a terminal or log raw.
    /// </summary>
    public static string Printable(string consumer) => Weft.Engine.DisplayText.Escaped(consumer);

    /// <summary>
    /// Why <paramref name="consumer"/> cannot name a consumer, or null when it can: 1–100 characters of
    /// ASCII letters, digits and <c>. _ - : / @</c> (a service or model name, a version), or <c>*</c>.
    /// Names come from requests and land in the ledger's routes and exposures, so they are held to what
    /// a name needs, not any string a caller sends.
    /// </summary>
    public static string? ConsumerProblem(string? consumer)
    {
        if (string.IsNullOrEmpty(consumer))
        {
            return "a consumer names the model or service reading; it is empty";
        }

        if (consumer == DefaultConsumer)
        {
            return null;
        }

        if (consumer.Length > MaxConsumerLength)
        {
            return $"a consumer name has at most {MaxConsumerLength} characters; this one has {consumer.Length}";
        }

        foreach (char c in consumer)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or ':' or '/' or '@'))
            {
                return $"a consumer name has ASCII letters, digits and . _ - : / @ only (or is *); it has {(char.IsControl(c) || char.IsWhiteSpace(c) ? $"U+{(int)c:X4}" : $"'{c}'")}";
            }
        }

        return null;
    }

    private const ulong FnvOffset = 14695981039346656037UL;
    private const ulong FnvPrime = 1099511628211UL;

    public static int Bucket(string signal, string eventType, long userId)
    {
        ArgumentNullException.ThrowIfNull(signal);
        ArgumentNullException.ThrowIfNull(eventType);
        ulong hash = FnvOffset;
        hash = Mix(hash, Encoding.UTF8.GetBytes(signal));
        hash = Mix(hash, [0]);
        hash = Mix(hash, Encoding.UTF8.GetBytes(eventType));
        hash = Mix(hash, [0]);
        Span<byte> user = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(user, userId);
        hash = Mix(hash, user);
        return (int)(hash % Buckets);
    }

    /// <summary>Whether Weft serves the user at <paramref name="percent"/> (0–100, two decimals count).</summary>
    public static bool ServedByWeft(double percent, string signal, string eventType, long userId) =>
        Bucket(signal, eventType, userId) < BucketsServed(percent);

    /// <summary>Whether <paramref name="percent"/> is a whole number of buckets, as <see cref="ServedByWeft"/> rounds it (0.01 % each).</summary>
    public static bool IsWholeBucket(double percent) => Math.Abs((percent * (Buckets / 100)) - BucketsServed(percent)) < 1e-6;

    /// <summary>
    /// <paramref name="percent"/> as the buckets it serves (a whole number of 0.01 % steps): what a route
    /// stores, so that its stage (cut-over at 100, cutting-over above 0) says what routing does.
    /// </summary>
    public static double OnBucket(double percent) => BucketsServed(percent) / (double)(Buckets / 100);

    private static int BucketsServed(double percent) => (int)Math.Round(percent * (Buckets / 100), MidpointRounding.AwayFromZero);

    private static ulong Mix(ulong hash, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            hash = (hash ^ b) * FnvPrime;
        }

        return hash;
    }
}
