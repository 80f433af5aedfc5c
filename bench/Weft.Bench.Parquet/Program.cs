using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Weft.Parquet;

namespace Weft.Bench.Parquet;

/// <summary>
/// Commands (see bench/parquet/run.sh, which runs them with DuckDB in between):
/// <list type="bullet">
/// <item><c>bench --dir D --json J [--rows N] [--row-group R] [--runs K] [--seed S] [--compression snappy]</c>: generate the table in
/// memory, time K writes to D/weft.parquet and K full scans of it (each with its strings as UTF-8 bytes and as
/// .NET strings, alternated), write the figures to J.</item>
/// <item><c>scan --file F [--runs K] [--strings utf8|dotnet]</c>: time full scans of any file.</item>
/// <item><c>verify --file F [--rows N] [--seed S]</c>: read F with Weft and check that every value equals the
/// generated table (proves both sides' files hold the same data).</item>
/// <item><c>report --weft J1 --duckdb J2</c>: print the comparison table.</item>
/// </list>
/// Everything runs on one thread (the awaits complete the file IO in order; the GC is workstation,
/// non-concurrent).
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0)
        {
            await Console.Error.WriteLineAsync("usage: Weft.Bench.Parquet bench|scan|verify|report [options]").ConfigureAwait(false);
            return 2;
        }

        var options = ParseOptions(args.AsSpan(1));
        try
        {
            switch (args[0])
            {
                case "bench":
                    await BenchAsync(options).ConfigureAwait(false);
                    return 0;
                case "verify":
                    return await VerifyAsync(options).ConfigureAwait(false);
                case "scan":
                    await ScanOnlyAsync(options).ConfigureAwait(false);
                    return 0;
                case "report":
                    return Report.Print(Required(options, "weft"), Required(options, "duckdb"));
                default:
                    await Console.Error.WriteLineAsync($"unknown command '{args[0]}'").ConfigureAwait(false);
                    return 2;
            }
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
            return 2;
        }
    }

    private static async Task BenchAsync(Dictionary<string, string> options)
    {
        var rows = long.Parse(options.GetValueOrDefault("rows", "10000000"), CultureInfo.InvariantCulture);
        var rowGroup = int.Parse(options.GetValueOrDefault("row-group", "1048576"), CultureInfo.InvariantCulture);
        var runs = int.Parse(options.GetValueOrDefault("runs", "3"), CultureInfo.InvariantCulture);
        var seed = long.Parse(options.GetValueOrDefault("seed", EventTable.DefaultSeed.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        var dir = Required(options, "dir");
        var json = Required(options, "json");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "weft.parquet");
        var compression = Enum.Parse<ParquetCompression>(options.GetValueOrDefault("compression", "snappy"), ignoreCase: true);
        // One thread, as the report's "Weft (1 thread)" row and its comparison with DuckDB at threads=1 say: the
        // writer's default encodes a row group's columns on every core.
        var writerOptions = new ParquetWriterOptions { Compression = compression, UseDictionary = true, MaxDegreeOfParallelism = 1 };

        var clock = Stopwatch.StartNew();
        var table = EventTable.GenerateTable(seed, rows, rowGroup);
        var logicalBytes = EventTable.LogicalBytes(table);
        Log($"generated {rows:N0} rows in {table.Count} row groups ({logicalBytes / 1e6:F0} logical MB) in {clock.Elapsed.TotalSeconds:F1} s");

        var writes = new List<Measurement>();
        for (var run = 1; run <= runs; run++)
        {
            var m = await MeasureAsync(async () =>
            {
                await using var file = new SyncFileStream(path, FileMode.Create, FileAccess.Write);
                await using var writer = await ParquetFileWriter.CreateAsync(file, EventTable.Schema, writerOptions).ConfigureAwait(false);
                foreach (var group in table)
                {
                    await writer.WriteRowGroupAsync(group).ConfigureAwait(false);
                }

                await writer.CompleteAsync().ConfigureAwait(false);
            }).ConfigureAwait(false);
            writes.Add(m);
            Log($"weft write run {run}: {m.Seconds:F3} s (cpu {m.CpuSeconds:F3} s, GC pauses {m.GcPauseSeconds:F3} s)");
        }

        // Free the generated table before scanning, so the scan's GC does not walk it.
        table.Clear();
        var fileBytes = new FileInfo(path).Length;

        // Two scans a run, alternated: strings as UTF-8 bytes (ReadUtf8ColumnAsync; DuckDB's scan keeps its
        // strings as pointers into its pages, not objects) and as .NET strings (ReadColumnAsync, one object a
        // value). The first is the figure the target compares; both must compute the same aggregates.
        var scans = new List<Measurement>();
        var stringScans = new List<Measurement>();
        var columnSeconds = new double[EventTable.Schema.Fields.Count];
        var stringColumnSeconds = new double[EventTable.Schema.Fields.Count];
        ScanAggregates? aggregates = null;
        ScanAggregates? stringAggregates = null;
        for (var run = 1; run <= runs; run++)
        {
            Array.Clear(columnSeconds);
            var m = await MeasureAsync(async () => aggregates = await ScanAsync(path, columnSeconds, utf8: true).ConfigureAwait(false)).ConfigureAwait(false);
            scans.Add(m);
            Log($"weft scan run {run} (UTF-8 strings): {m.Seconds:F3} s (cpu {m.CpuSeconds:F3} s, GC pauses {m.GcPauseSeconds:F3} s)");

            Array.Clear(stringColumnSeconds);
            m = await MeasureAsync(async () => stringAggregates = await ScanAsync(path, stringColumnSeconds, utf8: false).ConfigureAwait(false)).ConfigureAwait(false);
            stringScans.Add(m);
            Log($"weft scan run {run} (.NET strings): {m.Seconds:F3} s (cpu {m.CpuSeconds:F3} s, GC pauses {m.GcPauseSeconds:F3} s)");
        }

        if (aggregates is not null && aggregates.ToJson().ToJsonString() != stringAggregates!.ToJson().ToJsonString())
        {
            throw new InvalidOperationException(
                $"the UTF-8 scan's aggregates {aggregates.ToJson().ToJsonString()} differ from the string scan's {stringAggregates.ToJson().ToJsonString()}");
        }

        var breakdown = new JsonObject();
        var stringBreakdown = new JsonObject();
        for (var c = 0; c < columnSeconds.Length; c++)
        {
            breakdown[EventTable.Schema.Fields[c].Name] = Math.Round(columnSeconds[c], 4);
            stringBreakdown[EventTable.Schema.Fields[c].Name] = Math.Round(stringColumnSeconds[c], 4);
        }

        var result = new JsonObject
        {
            ["side"] = "weft",
            ["runtime"] = $".NET {Environment.Version}",
            ["rows"] = rows,
            ["rowGroupSize"] = rowGroup,
            ["rowGroups"] = (int)((rows + rowGroup - 1) / rowGroup),
            ["logicalBytes"] = logicalBytes,
            ["fileBytes"] = fileBytes,
            ["file"] = Path.GetFullPath(path),
            ["write"] = ToJson(writes),
            ["scan"] = ToJson(scans),
            ["scanStrings"] = ToJson(stringScans),
            ["scanSecondsByColumn"] = breakdown,
            ["scanStringsSecondsByColumn"] = stringBreakdown,
            ["aggregates"] = aggregates?.ToJson(),
        };
        await File.WriteAllTextAsync(json, result.ToJsonString(new JsonSerializerOptions { WriteIndented = true })).ConfigureAwait(false);
    }

    /// <summary>
    /// A full scan: every column chunk of every row group decoded into memory (a <see cref="ParquetColumnData"/>
    /// of arrays, and string columns as <see cref="ParquetUtf8Column"/> bytes and offsets when
    /// <paramref name="utf8"/>, else as .NET strings), then aggregated (<see cref="ScanAggregates"/>, the same
    /// aggregates as DuckDB's scan query) and released, as DuckDB's query releases its vectors.
    /// </summary>
    private static async Task<ScanAggregates> ScanAsync(string path, double[] perColumn, bool utf8)
    {
        await using var file = new SyncFileStream(path, FileMode.Open, FileAccess.Read);
        await using var reader = await ParquetFileReader.OpenAsync(file, path).ConfigureAwait(false);
        var fields = reader.Schema.Fields;
        var aggregates = new ScanAggregates(reader.Schema);
        for (var g = 0; g < reader.RowGroups.Count; g++)
        {
            for (var c = 0; c < fields.Count; c++)
            {
                var start = Stopwatch.GetTimestamp();
                if (utf8 && fields[c].Type == ParquetType.String && !fields[c].IsList)
                {
                    aggregates.Add(c, await reader.ReadUtf8ColumnAsync(g, fields[c].Name).ConfigureAwait(false));
                }
                else
                {
                    aggregates.Add(c, await reader.ReadColumnAsync(g, fields[c].Name).ConfigureAwait(false));
                }

                perColumn[c] += Stopwatch.GetElapsedTime(start).TotalSeconds;
            }

            aggregates.AddRows(reader.RowGroups[g].RowCount);
        }

        if (aggregates.Rows != reader.RowCount)
        {
            throw new InvalidOperationException($"scanned {aggregates.Rows} rows, the footer says {reader.RowCount}");
        }

        return aggregates;
    }

    /// <summary>Times full scans of any file (for profiling, or Weft reading DuckDB's file).</summary>
    private static async Task ScanOnlyAsync(Dictionary<string, string> options)
    {
        var file = Required(options, "file");
        var runs = int.Parse(options.GetValueOrDefault("runs", "3"), CultureInfo.InvariantCulture);
        var strings = options.GetValueOrDefault("strings", "utf8");
        if (strings is not ("utf8" or "dotnet"))
        {
            throw new ArgumentException($"--strings must be utf8 or dotnet, not '{strings}'");
        }

        await using (var reader = await ParquetFileReader.OpenAsync(file).ConfigureAwait(false))
        {
            var perColumn = new double[reader.Schema.Fields.Count];
            for (var run = 1; run <= runs; run++)
            {
                Array.Clear(perColumn);
                var m = await MeasureAsync(() => ScanAsync(file, perColumn, utf8: strings == "utf8")).ConfigureAwait(false);
                var columns = string.Join("; ", reader.Schema.Fields.Select((f, i) => $"{f.Name} {perColumn[i]:F3}"));
                Log($"scan {file} ({strings} strings) run {run}: {m.Seconds:F3} s (cpu {m.CpuSeconds:F3} s, {m.Gen0Collections} gen0 GCs, GC pauses {m.GcPauseSeconds:F3} s, gen1 {m.Gen1Collections} gen2 {m.Gen2Collections}, allocated {m.AllocatedBytes / 1e6:F0} MB): {columns}");
            }
        }
    }

    private static async Task<int> VerifyAsync(Dictionary<string, string> options)
    {
        var file = Required(options, "file");
        var rows = long.Parse(options.GetValueOrDefault("rows", "10000000"), CultureInfo.InvariantCulture);
        var seed = long.Parse(options.GetValueOrDefault("seed", EventTable.DefaultSeed.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        await using var reader = await ParquetFileReader.OpenAsync(file).ConfigureAwait(false);
        if (reader.RowCount != rows)
        {
            Log($"verify {file}: {reader.RowCount} rows, expected {rows}");
            return 1;
        }

        long first = 0;
        for (var g = 0; g < reader.RowGroups.Count; g++)
        {
            var count = (int)reader.RowGroups[g].RowCount;
            var expected = EventTable.Generate(seed, first, count);
            for (var c = 0; c < expected.Length; c++)
            {
                var name = expected[c].Field.Name;
                var actual = await reader.ReadColumnAsync(g, name).ConfigureAwait(false);
                if (Mismatch(expected[c], actual) is { } row)
                {
                    Log($"verify {file}: column '{name}' differs at row {first + row}");
                    return 1;
                }
            }

            first += count;
        }

        Log($"verify {file}: {rows:N0} rows in {reader.RowGroups.Count} row groups equal the generated table");
        return 0;
    }

    private static int? Mismatch(ParquetColumnData expected, ParquetColumnData actual)
    {
        for (var i = 0; i < expected.RowCount; i++)
        {
            if (expected.IsNull(i) != actual.IsNull(i))
            {
                return i;
            }
        }

        return (expected.Values, actual.Values) switch
        {
            (string?[] a, string?[] b) => FirstDifference(a, b),
            (long[] a, long[] b) => FirstDifference(a, b),
            (int[] a, int[] b) => FirstDifference(a, b),
            (double[] a, double[] b) => FirstDifference(a, b),
            _ => 0,
        };

        static int? FirstDifference<T>(T[] a, T[] b)
        {
            var comparer = EqualityComparer<T>.Default;
            if (a.Length != b.Length)
            {
                return Math.Min(a.Length, b.Length);
            }

            for (var i = 0; i < a.Length; i++)
            {
                if (!comparer.Equals(a[i], b[i]))
                {
                    return i;
                }
            }

            return null;
        }
    }

    private static async Task<Measurement> MeasureAsync(Func<Task> action)
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var gcBefore = GC.CollectionCount(0);
        var gen1Before = GC.CollectionCount(1);
        var gen2Before = GC.CollectionCount(2);
        var pauseBefore = GC.GetTotalPauseDuration();
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var cpuBefore = CpuTime();
        var start = Stopwatch.GetTimestamp();
        await action().ConfigureAwait(false);
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new Measurement(
            elapsed,
            (CpuTime() - cpuBefore).TotalSeconds,
            GC.CollectionCount(0) - gcBefore,
            GC.CollectionCount(1) - gen1Before,
            GC.CollectionCount(2) - gen2Before,
            (GC.GetTotalPauseDuration() - pauseBefore).TotalSeconds,
            GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore);
    }

    private static TimeSpan CpuTime()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime;
    }

    private static JsonObject ToJson(List<Measurement> runs)
    {
        var seconds = new JsonArray();
        var cpu = new JsonArray();
        var gcs = new JsonArray();
        var pauses = new JsonArray();
        foreach (var m in runs)
        {
            seconds.Add(Math.Round(m.Seconds, 4));
            cpu.Add(Math.Round(m.CpuSeconds, 4));
            gcs.Add(m.Gen0Collections);
            pauses.Add(Math.Round(m.GcPauseSeconds, 4));
        }

        return new JsonObject { ["seconds"] = seconds, ["cpuSeconds"] = cpu, ["gen0Collections"] = gcs, ["gcPauseSeconds"] = pauses };
    }

    private static Dictionary<string, string> ParseOptions(ReadOnlySpan<string> args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"expected '--name value', got '{args[i]}'");
            }

            options[args[i][2..]] = args[++i];
        }

        return options;
    }

    private static string Required(Dictionary<string, string> options, string name) =>
        options.TryGetValue(name, out var value) ? value : throw new ArgumentException($"missing --{name}");

    private static void Log(string message) => Console.Error.WriteLine($"[weft] {message}");

    private readonly record struct Measurement(
        double Seconds, double CpuSeconds, int Gen0Collections, int Gen1Collections, int Gen2Collections, double GcPauseSeconds, long AllocatedBytes);
}
