using System.Globalization;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Weft.Parquet.Tests;

/// <summary>
/// FsCheck properties, checked against DuckDB: any TIMESTAMP_NS / TIMESTAMP_MS column DuckDB writes, in
/// any codec and page version, reads as the µs DuckDB reads (nanoseconds rounded down), and its
/// statistics, converted to µs, never prune the row group away from a value it holds. Seeded.
/// </summary>
public sealed class ForeignTimestampPropertyTests
{
    private const ulong Seed = 0x5EED_7135;

    /// <summary>DuckDB's TIMESTAMP_NS keeps ±2^63-1 for infinity; ±9e18 ns is some 285 years either side of 1970.</summary>
    private const long NanosBound = 9_000_000_000_000_000_000;

    /// <summary>Milliseconds whose µs still fit a long (±285,000 years).</summary>
    private const long MillisBound = 9_000_000_000_000_000;

    /// <summary>One file's rows (null = a null row) and how DuckDB writes it.</summary>
    public sealed record Case(long?[] Nanos, long?[] Millis, string Codec, string Version)
    {
        public override string ToString() =>
            $"{Codec} {Version} rows={Nanos.Length} ns=[{string.Join(", ", Nanos.Take(12))}] ms=[{string.Join(", ", Millis.Take(12))}]";
    }

    /// <summary>Uniform over the whole range, small values, and the edges of a µs and of the epoch.</summary>
    private static Gen<long> Instants(long bound, params long[] edges) => Gen.Frequency(
        (3, from hi in Gen.Choose(int.MinValue, int.MaxValue)
            from lo in Gen.Choose(int.MinValue, int.MaxValue)
            select (((long)hi << 32) | (uint)lo) % bound),
        (2, ArbMap.Default.GeneratorFor<long>()),
        (1, Gen.Elements(edges)));

    private static Gen<long?> OrNull(Gen<long> value) =>
        Gen.Frequency((1, Gen.Constant<long?>(null)), (5, value.Select(v => (long?)v)));

    private static readonly Gen<Case> CaseGen =
        from rows in Gen.Choose(1, 80)
        from nanos in OrNull(Instants(NanosBound, -1, -999, -1000, -1001, 0, 999, 1000, 1001, NanosBound, -NanosBound)).ArrayOf(rows)
        from millis in OrNull(Instants(MillisBound, -1, 0, 1, MillisBound, -MillisBound)).ArrayOf(rows)
        from codec in Gen.Elements("zstd", "lz4_raw", "snappy", "gzip", "uncompressed")
        from version in Gen.Elements("V1", "V2")
        select new Case(nanos, millis, codec, version);

    [Fact]
    public void Any_DuckDB_nanosecond_or_millisecond_timestamp_column_reads_as_DuckDB_reads_it_and_never_prunes_a_held_value()
    {
        var property = Prop.ForAll(CaseGen.ToArbitrary(), ReadsAsDuckDbAsync);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(20).WithReplay(Seed, 0x9E3779B97F4A7C15), property);
    }

    private static async Task ReadsAsDuckDbAsync(Case c)
    {
        using var temp = new TempDir();
        var path = temp.File("ts.parquet");
        var file = DuckDb.Quote(path);
        var results = await DuckDb.RunAsync(
            $"""
            COPY (
              SELECT i::BIGINT AS id, make_timestamp_ns(n) AS ns, make_timestamp(m * 1000)::TIMESTAMP_MS AS ms
              FROM (SELECT unnest(range({c.Nanos.Length})) AS i, unnest({List(c.Nanos)}::BIGINT[]) AS n, unnest({List(c.Millis)}::BIGINT[]) AS m)
            ) TO {file} (FORMAT parquet, COMPRESSION {c.Codec}, PARQUET_VERSION {c.Version})
            """,
            $"""
            SELECT CAST(((epoch_ns(ns) - ((epoch_ns(ns) % 1000) + 1000) % 1000) // 1000) AS VARCHAR) AS ns, CAST(epoch_us(ms) AS VARCHAR) AS ms
            FROM read_parquet({file}) ORDER BY id
            """,
            $"SELECT name, logical_type FROM parquet_schema({file}) WHERE name IN ('ns', 'ms') ORDER BY name");
        results[2].Rows.Select(r => r[1].GetString()).Should().SatisfyRespectively(
            ms => ms.Should().Contain("MILLIS"),
            ns => ns.Should().Contain("NANOS"));

        await using var reader = await ParquetFileReader.OpenAsync(path);
        foreach (var (name, stored, micros) in new[]
        {
            ("ns", c.Nanos, (Func<long, long>)(ns => Math.DivRem(ns, 1000, out var rest) - (rest < 0 ? 1 : 0))),
            ("ms", c.Millis, ms => ms * 1000),
        })
        {
            reader.Schema[name].Type.Should().Be(ParquetType.TimestampMicros);
            var read = new List<long?>();
            for (var g = 0; g < reader.RowGroups.Count; g++)
            {
                var column = await reader.ReadColumnAsync(g, name);
                var values = Enumerable.Range(0, column.RowCount).Select(r => (long?)TestColumns.ValueAt(column, r)).ToList();
                read.AddRange(values);

                var present = values.OfType<long>().ToList();
                var stats = reader.RowGroups[g][name];
                if (present.Count > 0)
                {
                    stats.Min.Should().Be(present.Min(), $"{c}: min of '{name}' in µs");
                    stats.Max.Should().Be(present.Max(), $"{c}: max of '{name}' in µs");
                }

                foreach (var v in present)
                {
                    reader.FindRowGroups(name, v, v).Should().Contain(g, $"{c}: row group {g} holds {v} in '{name}'");
                }
            }

            var reference = results[1].Rows.Select(r => r[results[1].Index(name)]).Select(v => v.ValueKind == System.Text.Json.JsonValueKind.Null ? null : v.GetString());
            read.Select(v => v?.ToString(CultureInfo.InvariantCulture)).Should().Equal(reference, $"{c}: '{name}' reads as DuckDB reads it");
            read.Should().Equal(stored.Select(v => v is long s ? micros(s) : (long?)null), $"{c}: '{name}' in µs, rounded down");
        }
    }

    private static string List(long?[] values) =>
        "[" + string.Join(", ", values.Select(v => v?.ToString(CultureInfo.InvariantCulture) ?? "NULL")) + "]";
}
