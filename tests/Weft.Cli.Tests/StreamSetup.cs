using System.Diagnostics;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Online;
using Weft.Storage;
using Weft.Streaming.Embedded;

namespace Weft.Cli.Tests;

/// <summary>
/// The streaming tests' setup, shared by the tests that run weft stream in-process and as a child
/// process: generated events in an embedded log, the example signals, a weft.json, and the check that
/// the store and the lake hold every event once.
/// </summary>
internal static class StreamSetup
{
    /// <summary>Starts <c>dotnet weft.dll</c> with <paramref name="args"/> as a child process in the harness's folder, its output redirected.</summary>
    public static Process StartWeft(CliHarness cli, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = cli.Root };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "weft.dll"));
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        return Process.Start(start)!;
    }

    /// <summary>
    /// Generated events (one delivery per event id: producer re-sends are a separate concern) loaded into
    /// an embedded log before any stream starts, the example signals compiled, and a weft.json over them.
    /// </summary>
    /// <param name="keyed">Each record keyed by its user_id as decimal text, as producers of Weft's events key them; false: no keys.</param>
    public static async Task<(string Config, List<string> Lines)> EmbeddedStreamAsync(CliHarness cli, int events, int users, int items, int days, string? postgres = null, string? start = null, bool keyed = true)
    {
        var lines = await GenerateAsync(cli, events, users, items, days, start);
        var config = await WriteConfigAsync(cli, postgres, """{ "kind": "embedded", "path": "log" }""");
        await using (var log = await EmbeddedLog.OpenAsync(cli.PathOf("log")))
        {
            byte[] Key(string line) => keyed && UserOf(line) is { } user ? Encoding.UTF8.GetBytes(user.ToString(System.Globalization.CultureInfo.InvariantCulture)) : [];
            await log.AppendAsync(lines.Select(l => (Key(l), Encoding.UTF8.GetBytes(l))).ToList());
        }

        return (config, lines);
    }

    /// <summary>weft gen's raw events (each event id once) and the example signals compiled into signals/.</summary>
    /// <param name="start">weft gen's --start (ISO 8601); null: its fixed default.</param>
    public static async Task<List<string>> GenerateAsync(CliHarness cli, int events, int users, int items, int days, string? start = null)
    {
        string Text(int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string[] args = ["gen", "--out", cli.PathOf("raw"), "--events", Text(events), "--users", Text(users), "--items", Text(items), "--days", Text(days)];
        (await cli.RunAsync(start is null ? args : [.. args, "--start", start])).Exit.Should().Be(0);
        (await cli.RunAsync("compile", Path.Combine(CliHarness.RepoRoot, "examples", "definitions"), "--out", cli.PathOf("signals"))).Exit.Should().Be(0);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        return [.. (await File.ReadAllLinesAsync(cli.PathOf("raw/landing/events.jsonl"))).Where(l => EventId(l) is not { } id || seen.Add(id))];
    }

    /// <summary>weft.json over the generated data: the lake, the store (SQLite, or PostgreSQL when given) and the source.</summary>
    public static async Task<string> WriteConfigAsync(CliHarness cli, string? postgres, string source)
    {
        var config = cli.PathOf("weft.json");
        var store = postgres is null
            ? """{ "kind": "sqlite", "path": "online.db" }"""
            : $$"""{ "kind": "postgres", "connection_string": {{JsonSerializer.Serialize(postgres)}} }""";
        await File.WriteAllTextAsync(config, $$"""
            {
              "lake": "lake", "signals": "signals",
              "enrichments": { "items": "raw/items" },
              "online_store": {{store}},
              "source": {{source}}
            }
            """);
        return config;
    }

    public static long? UserOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("user_id", out var u))
            {
                return null;
            }

            return u.ValueKind == JsonValueKind.Number && u.TryGetInt64(out long n) ? n
                : u.ValueKind == JsonValueKind.String && long.TryParse(u.GetString(), System.Globalization.CultureInfo.InvariantCulture, out long parsed) ? parsed : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }


    /// <summary>Both example signals: every event the reference makes of the lines once online and once in the lake's stream rows.</summary>
    public static async Task ShouldHoldEveryEventOnceAsync(CliHarness cli, string config, string? postgres, List<string> lines)
    {
        var weft = WeftConfig.Load(config);
        await using var store = postgres is null
            ? await OnlineStores.OpenSqliteAsync(cli.PathOf("online.db"), CancellationToken.None)
            : await OnlineStores.OpenPostgresAsync(postgres, CancellationToken.None);
        foreach (var signal in new[] { "engagement", "searches" })
        {
            var expected = await ReferenceAsync(weft, signal, lines);
            expected.Should().NotBeEmpty();
            var users = expected.Select(e => e.User).Distinct().ToList();
            var online = await store.ReadManyAsync(signal, users, new OnlineReadOptions { Limit = 1_000_000 }, CancellationToken.None);
            // Sorted text and Equal: FluentAssertions' structural equivalence is quadratic at this size.
            Sorted(online.SelectMany(kv => kv.Value.Select(e => $"{kv.Key}/{e.EventId}"))).Should().Equal(Sorted(expected.Select(e => $"{e.User}/{e.Id}")), $"signal {signal}: every event once in the online store");

            var table = await EventTable.OpenAsync(weft.EnrichedTable(signal));
            var lake = new List<string>();
            await foreach (var b in table.ReadAsync([StandardColumns.EventId], PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.StreamPath)))
            {
                lake.AddRange(((StringColumn)b[StandardColumns.EventId]).Values.Select(v => v!));
            }

            Sorted(lake).Should().Equal(Sorted(expected.Select(e => e.Id)), $"signal {signal}: every stream row once in the lake, none written twice");
        }
    }

    private static List<string> Sorted(IEnumerable<string> values)
    {
        var list = values.ToList();
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    private static string? EventId(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("event_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The (user, event_id) pairs the signal makes of the lines, by the engine's batch shape.</summary>
    private static async Task<List<(long User, string Id)>> ReferenceAsync(WeftConfig config, string signal, List<string> lines)
    {
        var env = await SignalEnvironment.LoadAsync(config, signal);
        var parsed = new RawEventParser(env.Signal).Parse(lines.Select((l, i) => new RawRecord(Encoding.UTF8.GetBytes(l), $"{i}")));
        var run = env.Signal.StartRun(new ExecutorContext(env.Definition), new RunOptions { Assemble = false });
        var enriched = await run.ProcessTableAsync(parsed.Events, CancellationToken.None);
        return Enumerable.Range(0, enriched.RowCount).Select(i => ((long)enriched[StandardColumns.UserId].GetValue(i)!, (string)enriched[StandardColumns.EventId].GetValue(i)!)).ToList();
    }
}
