using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Weft.Definitions;
using Weft.Parquet;

namespace Weft.Bench.Batch;

/// <summary>
/// Commands (bench/batch/run.sh runs them, with DuckDB in between):
/// <list type="bullet">
/// <item><c>gen --dir D --events N [--users U] [--items I] [--seed S]</c>: write D/events.parquet, D/items.parquet,
/// D/signals/engagement.json and D/weft.json (skipped when D already holds the same data set).</item>
/// <item><c>weft --dir D --out F --json J</c>: build the sequences from D's raw files into F, write the figures to J.</item>
/// <item><c>report --json J...</c>: print the comparison table from the figures of both sides at every size.</item>
/// </list>
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0)
        {
            await Console.Error.WriteLineAsync("usage: Weft.Bench.Batch gen|weft|report [options]").ConfigureAwait(false);
            return 2;
        }

        var options = ParseOptions(args.AsSpan(1));
        try
        {
            switch (args[0])
            {
                case "gen":
                    await GenerateAsync(options).ConfigureAwait(false);
                    return 0;
                case "weft":
                    return await WeftRunner.RunAsync(Required(options, "dir"), Required(options, "out"), Required(options, "json")).ConfigureAwait(false);
                case "report":
                    return Report.Print(options["json"].Split(','), options.GetValueOrDefault("machine"));
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

    private static async Task GenerateAsync(Dictionary<string, string> options)
    {
        var dir = Required(options, "dir");
        var events = long.Parse(options.GetValueOrDefault("events", "20000000"), CultureInfo.InvariantCulture);
        var users = int.Parse(options.GetValueOrDefault("users", "1000000"), CultureInfo.InvariantCulture);
        var items = int.Parse(options.GetValueOrDefault("items", "200000"), CultureInfo.InvariantCulture);
        var seed = long.Parse(options.GetValueOrDefault("seed", DataSet.DefaultSeed.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        Directory.CreateDirectory(dir);
        var description = new JsonObject { ["events"] = events, ["users"] = users, ["items"] = items, ["seed"] = seed, ["rowGroupRows"] = DataSet.RowGroupRows, ["version"] = 1 };
        var marker = Path.Combine(dir, "dataset.json");
        if (File.Exists(marker) && await File.ReadAllTextAsync(marker).ConfigureAwait(false) == description.ToJsonString())
        {
            Log($"{dir} already holds this data set ({events:N0} events); not regenerated");
            return;
        }

        File.Delete(marker);
        var clock = Stopwatch.StartNew();
        var eventsPath = Path.Combine(dir, "events.parquet");
        await using (var writer = await ParquetFileWriter.CreateAsync(eventsPath, DataSet.EventSchema).ConfigureAwait(false))
        {
            // Row groups are generated two at a time (one per core) and written in order.
            var groups = (int)((events + DataSet.RowGroupRows - 1) / DataSet.RowGroupRows);
            Task<ParquetColumnData[]>? next = null;
            for (var g = 0; g < groups; g++)
            {
                var current = next ?? Generate(g);
                next = g + 1 < groups ? Generate(g + 1) : null;
                await writer.WriteRowGroupAsync(await current.ConfigureAwait(false)).ConfigureAwait(false);
            }

            await writer.CompleteAsync().ConfigureAwait(false);

            Task<ParquetColumnData[]> Generate(int group)
            {
                long first = (long)group * DataSet.RowGroupRows;
                int count = (int)Math.Min(DataSet.RowGroupRows, events - first);
                return Task.Run(() => DataSet.Events(seed, first, count, users, items));
            }
        }

        await using (var writer = await ParquetFileWriter.CreateAsync(Path.Combine(dir, "items.parquet"), DataSet.ItemSchema).ConfigureAwait(false))
        {
            await writer.WriteRowGroupAsync(DataSet.Items(seed, items)).ConfigureAwait(false);
            await writer.CompleteAsync().ConfigureAwait(false);
        }

        Directory.CreateDirectory(Path.Combine(dir, "signals"));
        await File.WriteAllBytesAsync(Path.Combine(dir, "signals", "engagement.json"), SignalJsonWriter.Write(DataSet.Signal())).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(dir, "weft.json"), """
            {
              "lake": "lake",
              "signals": "signals",
              "archives": [ { "path": "events.parquet", "format": "parquet" } ],
              "enrichments": { "items": { "path": "items.parquet", "format": "parquet" } }
            }
            """).ConfigureAwait(false);
        await File.WriteAllTextAsync(marker, description.ToJsonString()).ConfigureAwait(false);
        Log($"generated {events:N0} events ({new FileInfo(eventsPath).Length / 1e6:F0} MB) and {items:N0} items in {dir} in {clock.Elapsed.TotalSeconds:F1} s");
    }

    internal static Dictionary<string, string> ParseOptions(ReadOnlySpan<string> args)
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

    internal static void Log(string message) => Console.Error.WriteLine($"[weft] {message}");
}
