using System.Buffers;
using System.Collections.Immutable;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using Weft.Definitions;

namespace Weft.Engine;

internal static class Rows
{
    /// <summary>The rows of <paramref name="batch"/> where <paramref name="keep"/> is true.</summary>
    public static EventBatch Keep(EventBatch batch, ReadOnlySpan<bool> keep)
    {
        int count = 0;
        foreach (bool k in keep)
        {
            count += k ? 1 : 0;
        }

        if (count == batch.RowCount)
        {
            return batch;
        }

        var rows = new int[count];
        int j = 0;
        for (int i = 0; i < keep.Length; i++)
        {
            if (keep[i])
            {
                rows[j++] = i;
            }
        }

        return batch.GatherView(rows);
    }

    /// <summary>Reports every row with an error and returns a keep-mask without them.</summary>
    public static bool[] RejectErrors(EventBatch batch, RowErrors errors, ExecutorContext context, string stage)
    {
        var keep = new bool[batch.RowCount];
        Array.Fill(keep, true);
        foreach (var (row, reason) in errors.Errors)
        {
            keep[row] = false;
            context.Reject(batch, row, stage, reason);
        }

        return keep;
    }

    public static IReadOnlyList<FieldDefinition> With(IReadOnlyList<FieldDefinition> input, FieldDefinition field)
    {
        var result = new List<FieldDefinition>(input.Count + 1);
        bool replaced = false;
        foreach (var f in input)
        {
            if (f.Name == field.Name)
            {
                result.Add(field);
                replaced = true;
            }
            else
            {
                result.Add(f);
            }
        }

        if (!replaced)
        {
            result.Add(field);
        }

        return result;
    }
}

/// <summary>Keeps rows whose predicate is true; rows whose predicate fails to evaluate are dead-lettered.</summary>
public sealed class FilterExecutor(string stage, CompiledExpr predicate) : IEventExecutor
{
    public string Name => stage;

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => input;

    public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
    {
        var errors = new RowErrors(batch.RowCount);
        var result = (PrimitiveColumn<bool>)predicate.Evaluate(batch, errors);
        var keep = Rows.RejectErrors(batch, errors, context, stage);
        for (int i = 0; i < keep.Length; i++)
        {
            keep[i] &= result.Values[i] && !result.IsNull(i);
        }

        return ValueTask.FromResult(Rows.Keep(batch, keep));
    }
}

/// <summary>Renames and casts columns; values that do not cast are dead-lettered.</summary>
public sealed class MapExecutor(string stage, IReadOnlyList<(MapColumn Column, FieldDefinition Output)> columns) : IEventExecutor
{
    public string Name => stage;

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input)
    {
        var schema = input;
        foreach (var (_, output) in columns)
        {
            schema = Rows.With(schema, output);
        }

        return schema;
    }

    public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
    {
        var errors = new RowErrors(batch.RowCount);
        var computed = new List<(FieldDefinition, Column)>(columns.Count);
        foreach (var (column, output) in columns)
        {
            computed.Add((output, Casts.Cast(batch[column.From], output.Type, errors)));
        }

        var result = batch;
        foreach (var (field, column) in computed)
        {
            result = result.WithColumn(field, column);
        }

        return ValueTask.FromResult(Rows.Keep(result, Rows.RejectErrors(result, errors, context, stage)));
    }
}

/// <summary>Adds (or replaces) a column computed by an expression.</summary>
public sealed class DeriveExecutor(string stage, FieldDefinition output, CompiledExpr expr) : IEventExecutor
{
    public string Name => stage;

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => Rows.With(input, output);

    public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
    {
        var errors = new RowErrors(batch.RowCount);
        var column = expr.Evaluate(batch, errors);
        var result = batch.WithColumn(output, column);
        return ValueTask.FromResult(Rows.Keep(result, Rows.RejectErrors(result, errors, context, stage)));
    }
}

/// <summary>
/// Bundled custom executor "hash_bucket": a stable feature-hash of a column into [0, buckets).
/// Args: column, buckets, output. FNV-1a over the value's invariant text, so every runtime and
/// language can reproduce it.
/// </summary>
public sealed class HashBucketExecutor : IEventExecutor
{
    public const string ExecutorName = "hash_bucket";
    private readonly string _column;
    private readonly long _buckets;
    private readonly FieldDefinition _output;

    public HashBucketExecutor(CustomStep step)
    {
        const string Needs = "hash_bucket needs args column, output and buckets (a positive integer)";
        if (step.Args.Keys.FirstOrDefault(k => k is not ("column" or "output" or "buckets")) is { } unknown)
        {
            // A misspelt argument ("bucket") would otherwise read as missing, or be ignored.
            throw new ArgumentException($"{Needs}; '{unknown}' is not one of them", nameof(step));
        }

        if (!step.Args.TryGetValue("column", out var column) || !step.Args.TryGetValue("output", out var output) || !step.Args.TryGetValue("buckets", out var b))
        {
            throw new ArgumentException($"{Needs}; {string.Join(" and ", new[] { "column", "output", "buckets" }.Where(k => !step.Args.ContainsKey(k)))} missing", nameof(step));
        }

        if (!long.TryParse(b, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _buckets) || _buckets <= 0)
        {
            throw new ArgumentException($"{Needs}; buckets was '{DisplayText.Cut(b)}'", nameof(step));
        }

        _column = column;
        _output = new FieldDefinition(output, WeftType.Int64, Nullable: true);
    }

    public string Name => ExecutorName;

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input)
    {
        if (!input.Any(f => f.Name == _column))
        {
            throw new ArgumentException($"hash_bucket reads column '{_column}', which no step before it has (columns: {string.Join(", ", input.Select(f => f.Name))})");
        }

        return Rows.With(input, _output);
    }

    public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
    {
        var source = batch[_column];
        var values = new long[batch.RowCount];
        Span<byte> buffer = stackalloc byte[256];
        for (int i = 0; i < values.Length; i++)
        {
            if (source.IsNull(i))
            {
                continue;
            }

            string text = ValueFormat.Format(source.GetValue(i), source.Type);
            ulong hash = 14695981039346656037UL;
            int n = Encoding.UTF8.GetMaxByteCount(text.Length) <= buffer.Length ? Encoding.UTF8.GetBytes(text, buffer) : -1;
            ReadOnlySpan<byte> bytes = n >= 0 ? buffer[..n] : Encoding.UTF8.GetBytes(text);
            foreach (byte x in bytes)
            {
                hash = (hash ^ x) * 1099511628211UL;
            }

            values[i] = (long)(hash % (ulong)_buckets);
        }

        return ValueTask.FromResult(batch.WithColumn(_output, new PrimitiveColumn<long>(WeftType.Int64, values, source.Nulls)));
    }
}

/// <summary>
/// Drops repeated deliveries of an event_id: the first delivery seen wins. Remembers the most recent
/// <c>capacity</c> ids (first in, first out), so memory stays bounded on an endless stream; the
/// sequence assembly deduplicates again per user, so an id evicted here still cannot appear twice.
/// </summary>
/// <remarks>
/// The window holds 128-bit hashes of the ids (XxHash128, seeded at random per instance) in a
/// <see cref="KeyWindow"/>, not the strings: a full window of 4 million ids costs ~200 MB of plain
/// structs the garbage collector never scans, where the strings cost ~350 MB of objects it marked, and
/// promoted from generation to generation, on every collection. Two different ids share a hash with
/// probability ~2^-128 per pair; the random seed keeps that chance from being engineered by whoever
/// writes the ids.
/// </remarks>
public sealed class DedupExecutor(int capacity = 4_000_000) : IEventExecutor
{
    private readonly KeyWindow _seen = new(capacity);
    private readonly long _seed = Random.Shared.NextInt64();

    public string Name => "dedup";

    /// <summary>Repeated deliveries dropped so far.</summary>
    public long Duplicates { get; private set; }

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => input;

    public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
    {
        var keep = new bool[batch.RowCount];
        Add(((StringColumn)batch[StandardColumns.EventId]).Values, keep);
        foreach (bool added in keep)
        {
            Duplicates += added ? 0 : 1;
        }

        return ValueTask.FromResult(Rows.Keep(batch, keep));
    }

    /// <summary>
    /// Takes ids of events already delivered (a restarted stream's recent output, oldest first) into the
    /// window, so their redeliveries are dropped; counts no duplicate. <paramref name="added"/>[i] says
    /// whether id i was new to it.
    /// </summary>
    internal void Remember(string?[] ids, int count, Span<bool> added) => Add(ids.AsSpan(0, count), added[..count]);

    /// <summary>Whether the window holds <paramref name="id"/>: a delivery of it now would be dropped.</summary>
    internal bool Holds(string id) => _seen.Contains(Key(id));

    /// <summary>Takes one id into the window without counting a duplicate; false when it held the id already.</summary>
    internal bool Remember(string id) => _seen.Add(Key(id));

    private UInt128 Key(string? id) => XxHash128.HashToUInt128(MemoryMarshal.AsBytes(id.AsSpan()), _seed);

    private void Add(ReadOnlySpan<string?> ids, Span<bool> added)
    {
        var keys = ArrayPool<UInt128>.Shared.Rent(ids.Length);
        try
        {
            for (int i = 0; i < ids.Length; i++)
            {
                keys[i] = Key(ids[i]);
            }

            _seen.AddMany(keys.AsSpan(0, ids.Length), added);
        }
        finally
        {
            ArrayPool<UInt128>.Shared.Return(keys);
        }
    }
}

/// <summary>
/// Budget: a user with more than N events in one hour of event time is bot-like; further events of
/// that hour are dead-lettered with the reason, so a hot user cannot crowd out everything else.
/// </summary>
public sealed class HotUserCapExecutor(int maxEventsPerHour) : IEventExecutor
{
    private const long HourMicros = 3_600_000_000L;

    /// <summary>Counts kept before hours far behind the newest are forgotten.</summary>
    internal const int PruneAbove = 1_000_000;

    /// <summary>How many hours behind the newest one seen a count is kept (once there are many).</summary>
    internal const long KeptHours = 48;

    private readonly Dictionary<UserHour, int> _counts = [];
    private long _maxHour = long.MinValue;
    private long _prunedAt = long.MinValue;

    public string Name => "hot_user_cap";

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => input;

    public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
    {
        var users = ((PrimitiveColumn<long>)batch[StandardColumns.UserId]).Values;
        var times = ((PrimitiveColumn<long>)batch[StandardColumns.EventTime]).Values;
        var keep = new bool[batch.RowCount];
        for (int i = 0; i < keep.Length; i++)
        {
            int count = Bump(users[i], times[i], out long hour);
            keep[i] = count <= maxEventsPerHour;
            if (!keep[i])
            {
                context.Reject(batch, i, Name, $"hot user cap: more than {maxEventsPerHour} events in the hour starting {Timestamps.Format(hour * HourMicros)}");
            }
        }

        Prune();
        return ValueTask.FromResult(Rows.Keep(batch, keep));
    }

    /// <summary>
    /// Counts events already let through and stored (a restarted stream's recent output) without
    /// judging them, so a hot user's next events meet the cap where they met it before the restart:
    /// those <paramref name="counted"/> marks (the ones new to the dedup window), into their users' hours.
    /// </summary>
    internal void Remember(long[] users, long[] times, int count, ReadOnlySpan<bool> counted)
    {
        for (int i = 0; i < count; i++)
        {
            if (counted[i])
            {
                Bump(users[i], times[i], out _);
            }
        }

        Prune();
    }

    private int Bump(long user, long time, out long hour)
    {
        hour = Math.DivRem(time, HourMicros, out long rem) - (rem < 0 ? 1 : 0);
        _maxHour = Math.Max(_maxHour, hour);
        ref int count = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_counts, new UserHour(user, hour), out _);
        return ++count;
    }

    private void Prune()
    {
        // Bounded state: forget hours far behind the newest one seen. At most once per new hour: with
        // more than PruneAbove users active within KeptHours, a scan per batch would find nothing to
        // forget and cost a pass over every count each time.
        if (_counts.Count > PruneAbove && _maxHour > _prunedAt)
        {
            _prunedAt = _maxHour;
            long oldest = _maxHour - KeptHours;
            foreach (var key in _counts.Keys)
            {
                if (key.Hour < oldest)
                {
                    _counts.Remove(key); // allowed while enumerating a Dictionary
                }
            }
        }
    }

    /// <summary>
    /// A count's key. Its hash is a multiply-and-fold under a per-process random seed, where a value
    /// tuple's combines two hashes through a longer mixer: this lookup runs once per event. The seed
    /// keeps user ids chosen to collide from being chosen ahead of time.
    /// </summary>
    private readonly record struct UserHour(long User, long Hour)
    {
        private static readonly ulong Seed = (ulong)Random.Shared.NextInt64() | 1;

        public override int GetHashCode()
        {
            ulong mixed = (((ulong)User ^ Seed) * 0x9E37_79B9_7F4A_7C15UL) ^ ((ulong)Hour * 0xC2B2_AE3D_27D4_EB4FUL);
            return (int)(mixed ^ (mixed >> 29));
        }
    }
}

/// <summary>Projects batches onto a fixed schema (missing columns become null).</summary>
public sealed class ProjectExecutor(ImmutableArray<FieldDefinition> schema) : IEventExecutor
{
    public string Name => "project";

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => schema;

    public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken) =>
        ValueTask.FromResult(batch.Project(schema));
}
