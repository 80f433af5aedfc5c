using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using Weft.Definitions;
using Weft.Engine;

namespace Weft.Storage.Tests.Tables;

/// <summary>Schemas, seeded random batches and row comparisons for the event-table tests.</summary>
internal static class EventData
{
    /// <summary>2026-11-23T10:00:00Z in µs.</summary>
    public static readonly long BaseMicros = Timestamps.ToMicros(new DateTimeOffset(2026, 11, 23, 10, 0, 0, TimeSpan.Zero));

    public const long HourMicros = 3_600_000_000L;

    /// <summary>Ten columns, as an enriched event table might hold them.</summary>
    public static readonly ImmutableArray<FieldDefinition> TenColumns =
    [
        new("event_id", WeftType.String, Nullable: false),
        new("user_id", WeftType.Int64, Nullable: false),
        new("event_type", WeftType.String, Nullable: false),
        new("event_time", WeftType.Timestamp, Nullable: false),
        new("ingest_time", WeftType.Timestamp, Nullable: false),
        new("item_id", WeftType.Int64),
        new("surface", WeftType.String),
        new("dwell_ms", WeftType.Int32),
        new("score", WeftType.Float64),
        new("embedding", WeftType.ListOf(ScalarKind.Float32)),
    ];

    /// <summary>
    /// A batch of <paramref name="rows"/> random rows of <paramref name="schema"/>. <c>event_id</c> is
    /// <c>{idPrefix}{row}</c>; <c>event_time</c> lies in [<paramref name="fromMicros"/>, <paramref name="fromMicros"/> + <paramref name="spanMicros"/>),
    /// ascending when <paramref name="sortedTime"/>. Other columns are random, with nulls, empty lists and edge values.
    /// </summary>
    public static EventBatch Random(
        ImmutableArray<FieldDefinition> schema, int rows, int seed, string idPrefix = "e", long? fromMicros = null, long spanMicros = 3 * HourMicros,
        bool sortedTime = false, bool finiteOnly = false)
    {
        var rng = new Random(seed);
        var from = fromMicros ?? BaseMicros;
        var columns = new Column[schema.Length];
        for (var c = 0; c < schema.Length; c++)
        {
            var field = schema[c];
            columns[c] = field.Name switch
            {
                "event_id" => new StringColumn([.. Enumerable.Range(0, rows).Select(i => (string?)(idPrefix + i.ToString(CultureInfo.InvariantCulture)))]),
                "event_time" => new PrimitiveColumn<long>(WeftType.Timestamp, sortedTime
                    ? [.. Enumerable.Range(0, rows).Select(i => from + (spanMicros * i / Math.Max(rows, 1)))]
                    : [.. Enumerable.Range(0, rows).Select(_ => from + rng.NextInt64(spanMicros))]),
                _ => RandomColumn(field, rows, rng, finiteOnly),
            };
        }

        return new EventBatch(schema, columns);
    }

    public static Column RandomColumn(FieldDefinition field, int rows, Random rng, bool finiteOnly = false)
    {
        bool IsNull() => field.Nullable && rng.Next(5) == 0;
        var type = field.Type;
        if (type.IsList)
        {
            return type.Kind switch
            {
                ScalarKind.Bool => new ListColumn<bool>(type, Lists(rows, IsNull, rng, r => r.Next(2) == 1)),
                ScalarKind.Int32 => new ListColumn<int>(type, Lists(rows, IsNull, rng, RandomInt)),
                ScalarKind.Int64 => new ListColumn<long>(type, Lists(rows, IsNull, rng, RandomLong)),
                ScalarKind.Timestamp => new ListColumn<long>(type, Lists(rows, IsNull, rng, r => RandomTime(r, finiteOnly))),
                ScalarKind.Float32 => new ListColumn<float>(type, Lists(rows, IsNull, rng, r => RandomFloat(r, finiteOnly))),
                ScalarKind.Float64 => new ListColumn<double>(type, Lists(rows, IsNull, rng, r => RandomDouble(r, finiteOnly))),
                _ => new ListColumn<string>(type, Lists(rows, IsNull, rng, RandomString)),
            };
        }

        bool[]? nulls = null;
        bool[] Mask()
        {
            nulls = new bool[rows];
            for (var i = 0; i < rows; i++)
            {
                nulls[i] = IsNull();
            }

            return nulls;
        }

        return type.Kind switch
        {
            ScalarKind.Bool => Primitive(type, Mask(), rng, r => r.Next(2) == 1),
            ScalarKind.Int32 => Primitive(type, Mask(), rng, RandomInt),
            ScalarKind.Int64 => Primitive(type, Mask(), rng, RandomLong),
            ScalarKind.Timestamp => Primitive(type, Mask(), rng, r => RandomTime(r, finiteOnly)),
            ScalarKind.Float32 => Primitive(type, Mask(), rng, r => RandomFloat(r, finiteOnly)),
            ScalarKind.Float64 => Primitive(type, Mask(), rng, r => RandomDouble(r, finiteOnly)),
            _ => new StringColumn([.. Mask().Select(isNull => isNull ? null : RandomString(rng))]),
        };
    }

    private static PrimitiveColumn<T> Primitive<T>(WeftType type, bool[] nulls, Random rng, Func<Random, T> value)
        where T : unmanaged
    {
        var values = new T[nulls.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = nulls[i] ? default : value(rng);
        }

        return new PrimitiveColumn<T>(type, values, nulls.Contains(true) ? nulls : null);
    }

    private static T[]?[] Lists<T>(int rows, Func<bool> isNull, Random rng, Func<Random, T> value)
    {
        var result = new T[]?[rows];
        for (var i = 0; i < rows; i++)
        {
            result[i] = isNull() ? null : [.. Enumerable.Range(0, rng.Next(6)).Select(_ => value(rng))];
        }

        return result;
    }

    private static int RandomInt(Random rng) => rng.Next(10) switch
    {
        0 => int.MinValue,
        1 => int.MaxValue,
        2 => 0,
        _ => rng.Next(-1000, 1000),
    };

    private static long RandomLong(Random rng) => rng.Next(10) switch
    {
        0 => long.MinValue,
        1 => long.MaxValue,
        2 => rng.Next(-5, 5),
        _ => rng.NextInt64(long.MinValue, long.MaxValue),
    };

    private static long RandomTime(Random rng, bool finiteOnly) => !finiteOnly && rng.Next(20) == 0
        ? (rng.Next(2) == 0 ? long.MinValue : long.MaxValue)
        : BaseMicros + rng.NextInt64(-1_000_000 * HourMicros, 1_000_000 * HourMicros);

    private static float RandomFloat(Random rng, bool finiteOnly) => !finiteOnly && rng.Next(8) == 0
        ? new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f }[rng.Next(4)]
        : (float)((rng.NextDouble() - 0.5) * 1000);

    private static double RandomDouble(Random rng, bool finiteOnly) => !finiteOnly && rng.Next(8) == 0
        ? new[] { double.NaN, double.PositiveInfinity, double.NegativeInfinity, -0d, double.MaxValue }[rng.Next(5)]
        : (rng.NextDouble() - 0.5) * 1e6;

    private static readonly string[] Strings = ["", "a", "b", "click", "ü", "😀", "日本語", "tab\tand \"quote\"", new string('z', 40)];

    private static string RandomString(Random rng) => rng.Next(3) == 0
        ? Strings[rng.Next(Strings.Length)]
        : "s" + rng.Next(50).ToString(CultureInfo.InvariantCulture);

    /// <summary>Every row of the batches as a canonical string (columns in <paramref name="columns"/> order), sorted ordinally.</summary>
    public static List<string> Rows(IEnumerable<EventBatch> batches, IReadOnlyList<string> columns)
    {
        var result = new List<string>();
        foreach (var batch in batches)
        {
            for (var row = 0; row < batch.RowCount; row++)
            {
                var builder = new StringBuilder();
                foreach (var name in columns)
                {
                    builder.Append(name).Append('=').Append(Show(batch[name].GetValue(row))).Append('|');
                }

                result.Add(builder.ToString());
            }
        }

        result.Sort(StringComparer.Ordinal);
        return result;
    }

    /// <summary>A canonical text for a boxed column value; floats by their bits, so NaN and -0 compare exactly.</summary>
    public static string Show(object? value) => value switch
    {
        null => "null",
        float f => "f" + BitConverter.SingleToInt32Bits(f).ToString(CultureInfo.InvariantCulture),
        double d => "d" + BitConverter.DoubleToInt64Bits(d).ToString(CultureInfo.InvariantCulture),
        string s => "\"" + s + "\"",
        bool b => b ? "true" : "false",
        IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
        System.Collections.IEnumerable list => "[" + string.Join(",", list.Cast<object?>().Select(Show)) + "]",
        _ => value.ToString() ?? "",
    };

    public static async Task<List<EventBatch>> ReadAllAsync(IAsyncEnumerable<EventBatch> batches)
    {
        var result = new List<EventBatch>();
        await foreach (var batch in batches)
        {
            result.Add(batch);
        }

        return result;
    }

    /// <summary>The data files on disk under a table (not the log), relative, sorted.</summary>
    public static string[] DataFilesOnDisk(string tablePath) =>
        [.. Directory.EnumerateFiles(tablePath, "*.parquet", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(tablePath, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)];
}
