using BenchmarkDotNet.Attributes;
using Microsoft.Data.Sqlite;
using Weft.Online;

namespace Weft.Benchmarks;

/// <summary>
/// Appending a stream's elements to the SQLite online store that already holds 1,000,000 (a store
/// in service is never empty, and the cost of a per-user layout grows with it): 100,000 more elements
/// of 100,000 users (a few heavy ones), event times rising with jitter, in batches of
/// <see cref="BatchSize"/>, each batch one durable commit, and the store's background merges
/// finished before the clock stops. Beside it, in the same run and from the same 1M-row start: the
/// reference, a table clustered per user (key signal, user, time, id: the obvious layout, and the
/// store's first one) written with prepared <c>INSERT … ON CONFLICT DO NOTHING</c>s; and the ceiling,
/// rows appended in rowid order with no key. Figures are per appended element (OperationsPerInvoke).
/// </summary>
[MemoryDiagnoser]
public class OnlineStoreAppendBenchmarks
{
    private const int Elements = 100_000;
    private const int Preloaded = 1_000_000;
    private OnlineElement[] _elements = [];
    private string _directory = "";
    private string _templates = "";

    [Params(2_000, 10_000)]
    public int BatchSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var all = Generate(Preloaded + Elements);
        _elements = all[Preloaded..];
        _templates = Directory.CreateTempSubdirectory("weft-bench-online-templates-").FullName;
#pragma warning disable VSTHRD002 // the in-process toolchain does not await an async GlobalSetup: block on it here
        Task.Run(() => PreloadAsync(all[..Preloaded])).GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_templates, recursive: true);

    [IterationSetup]
    public void FreshCopies()
    {
        _directory = Directory.CreateTempSubdirectory("weft-bench-online-").FullName;
        foreach (var file in Directory.GetFiles(_templates))
        {
            File.Copy(file, Path.Combine(_directory, Path.GetFileName(file)));
        }
    }

    [IterationCleanup]
    public void RemoveDirectory() => Directory.Delete(_directory, recursive: true);

    internal static OnlineElement[] Generate(int count)
    {
        var random = new Random(42);
        var payload = new byte[48];
        random.NextBytes(payload);
        var elements = new OnlineElement[count];
        long start = 1_796_000_000_000_000;
        for (int i = 0; i < count; i++)
        {
            double u = random.NextDouble();
            long time = start + (i * 1_000L) + random.Next(0, 10_000_000);
            elements[i] = new OnlineElement(1_000_000 + (long)(u * u * 100_000), time, $"0042-{i:x12}", time + 5_000, payload);
        }

        return elements;
    }

    private async Task PreloadAsync(OnlineElement[] preload)
    {
        await using (var store = await OnlineStores.OpenSqliteAsync(Path.Combine(_templates, "online.db"), CancellationToken.None))
        {
            for (int i = 0; i < preload.Length; i += 50_000)
            {
                await store.AppendAsync("clicks", new ArraySegment<OnlineElement>(preload, i, Math.Min(50_000, preload.Length - i)), null, CancellationToken.None);
            }
        }

        // The store merges in the background: reopen until it has nothing left to merge.
        await using (var settled = await OnlineStores.OpenSqliteAsync(Path.Combine(_templates, "online.db"), CancellationToken.None))
        {
            await settled.AppendAsync("clicks", preload[..1], null, CancellationToken.None);
            await WaitForMergesAsync(settled);
        }

        foreach (var (name, table) in (IEnumerable<(string, string)>)[("clustered.db", ClusteredTable), ("rowid.db", Columns + ")")])
        {
            using var connection = Open(Path.Combine(_templates, name));
            using (var create = connection.CreateCommand())
            {
                create.CommandText = table;
                await create.ExecuteNonQueryAsync();
            }

            Insert(connection, "INSERT INTO e VALUES ($s, $u, $t, $i, $g, $p)", preload, Preloaded);
        }
    }

    private const string Columns = "CREATE TABLE e (signal TEXT NOT NULL, user_id INTEGER NOT NULL, event_time INTEGER NOT NULL, event_id TEXT NOT NULL, ingest_time INTEGER NOT NULL, payload BLOB NOT NULL";

    /// <summary>The reference layout: one table clustered per user, newest first.</summary>
    internal const string ClusteredTable = Columns + ", PRIMARY KEY (signal, user_id, event_time DESC, event_id)) WITHOUT ROWID";

    internal static Task WaitForMergesAsync(IOnlineStore store) => ((Weft.Online.Sqlite.SqliteOnlineStore)store).WaitForMergesAsync();

    [Benchmark(Description = "Weft SQLite store (sorted runs)", OperationsPerInvoke = Elements)]
    public async Task WeftStore()
    {
        await using var store = await OnlineStores.OpenSqliteAsync(Path.Combine(_directory, "online.db"), CancellationToken.None);
        for (int i = 0; i < Elements; i += BatchSize)
        {
            await store.AppendAsync("clicks", new ArraySegment<OnlineElement>(_elements, i, Math.Min(BatchSize, Elements - i)), null, CancellationToken.None);
        }

        await WaitForMergesAsync(store);
    }

    [Benchmark(Baseline = true, Description = "reference: table clustered per user", OperationsPerInvoke = Elements)]
    public void ClusteredPerUser()
    {
        using var connection = Open(Path.Combine(_directory, "clustered.db"));
        Insert(connection, "INSERT INTO e VALUES ($s, $u, $t, $i, $g, $p) ON CONFLICT DO NOTHING", _elements, BatchSize);
    }

    [Benchmark(Description = "ceiling: rowid order, no key", OperationsPerInvoke = Elements)]
    public void RowidAppend()
    {
        using var connection = Open(Path.Combine(_directory, "rowid.db"));
        Insert(connection, "INSERT INTO e VALUES ($s, $u, $t, $i, $g, $p)", _elements, BatchSize);
    }

    private static SqliteConnection Open(string path)
    {
        var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var setup = connection.CreateCommand();
        setup.CommandText = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;";
        setup.ExecuteNonQuery();
        return connection;
    }

    internal static void Insert(SqliteConnection connection, string insert, OnlineElement[] elements, int batchSize)
    {
        using var command = connection.CreateCommand();
        command.CommandText = insert;
        var p = new[] { command.Parameters.Add("$s", SqliteType.Text), command.Parameters.Add("$u", SqliteType.Integer), command.Parameters.Add("$t", SqliteType.Integer),
            command.Parameters.Add("$i", SqliteType.Text), command.Parameters.Add("$g", SqliteType.Integer), command.Parameters.Add("$p", SqliteType.Blob) };
        command.Prepare();
        p[0].Value = "clicks";
        for (int i = 0; i < elements.Length; i += batchSize)
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            command.Transaction = transaction;
            for (int j = i; j < Math.Min(i + batchSize, elements.Length); j++)
            {
                var e = elements[j];
                p[1].Value = e.UserId;
                p[2].Value = e.EventTimeMicros;
                p[3].Value = e.EventId;
                p[4].Value = e.IngestTimeMicros;
                p[5].Value = e.Payload;
                command.ExecuteNonQuery();
            }

            transaction.Commit();
        }
    }
}
