using System.Globalization;
using System.Text.Json.Nodes;
using Weft.Parquet;

namespace Weft.Bench.Parquet;

/// <summary>
/// What the full scan computes from every decoded column, the same aggregates as DuckDB's scan query in
/// bench/parquet/duckdb-bench.mjs: per column the count of non-null values and their sum (strings: the
/// sum of their lengths, which is DuckDB's <c>strlen</c> for this ASCII data; timestamps: microseconds).
/// Integer sums wrap at 64 bits and are compared with DuckDB's exact sums modulo 2^64.
/// </summary>
internal sealed class ScanAggregates
{
    private readonly long[] _counts;
    private readonly long[] _sums;
    private readonly double[] _doubleSums;

    public ScanAggregates(ParquetSchema schema)
    {
        Schema = schema;
        _counts = new long[schema.Fields.Count];
        _sums = new long[schema.Fields.Count];
        _doubleSums = new double[schema.Fields.Count];
    }

    public ParquetSchema Schema { get; }

    public long Rows { get; private set; }

    public void AddRows(long rows) => Rows += rows;

    public void Add(int column, ParquetColumnData data)
    {
        var nulls = data.Nulls;
        switch (data.Values)
        {
            case string?[] strings:
                {
                    long sum = 0, count = 0;
                    foreach (var s in strings)
                    {
                        if (s is not null)
                        {
                            sum += s.Length;
                            count++;
                        }
                    }

                    _sums[column] += sum;
                    _counts[column] += count;
                    break;
                }

            case long[] longs:
                {
                    long sum = 0;
                    foreach (var v in longs)
                    {
                        sum += v;
                    }

                    _sums[column] += sum;
                    _counts[column] += NonNull(nulls, longs.Length);
                    break;
                }

            case int[] ints:
                {
                    long sum = 0;
                    foreach (var v in ints)
                    {
                        sum += v;
                    }

                    _sums[column] += sum;
                    _counts[column] += NonNull(nulls, ints.Length);
                    break;
                }

            case double[] doubles:
                {
                    var sum = 0.0;
                    for (var i = 0; i < doubles.Length; i++)
                    {
                        if (nulls is null || !nulls[i])
                        {
                            sum += doubles[i];
                        }
                    }

                    _doubleSums[column] += sum;
                    _counts[column] += NonNull(nulls, doubles.Length);
                    break;
                }

            default:
                throw new InvalidOperationException($"Unexpected column type {data.Values.GetType()}.");
        }
    }

    /// <summary>A string column read as UTF-8: the count of non-null rows and the sum of their byte lengths.</summary>
    public void Add(int column, ParquetUtf8Column data)
    {
        var offsets = data.Offsets;
        var nulls = data.Nulls;
        long sum = 0;
        for (var i = 0; i < data.RowCount; i++)
        {
            // A null row has no bytes, so it adds nothing to the sum.
            sum += offsets[i + 1] - offsets[i];
        }

        _sums[column] += sum;
        _counts[column] += NonNull(nulls, data.RowCount);
    }

    /// <summary>As JSON: { column: { count, sum } } with sums as decimal strings (double sums as numbers).</summary>
    public JsonObject ToJson()
    {
        var result = new JsonObject { ["rows"] = Rows };
        for (var c = 0; c < _counts.Length; c++)
        {
            var field = Schema.Fields[c];
            result[field.Name] = new JsonObject
            {
                ["count"] = _counts[c],
                ["sum"] = field.Type == ParquetType.Double
                    ? JsonValue.Create(_doubleSums[c])
                    : JsonValue.Create(_sums[c].ToString(CultureInfo.InvariantCulture)),
            };
        }

        return result;
    }

    // Null rows hold 0, so they add nothing to the integer sums; only the counts need the flags.
    private static long NonNull(bool[]? nulls, int length)
    {
        if (nulls is null)
        {
            return length;
        }

        return length - nulls.AsSpan().Count(true);
    }
}
