using BenchmarkDotNet.Attributes;
using Microsoft.Data.Sqlite;
using Weft.Online;

namespace Weft.Benchmarks;

/// <summary>
/// Reading a user's last 500 elements from the SQLite online store as a stream leaves it: 1,500,000
/// elements of 100,000 users (a few heavy) appended in batches of 10,000 (the stream's micro-batch),
/// the background merges finished, so the store holds the runs its merge policy keeps (at most
/// <see cref="FanIn"/> − 1 per tier). 1,000 reads per invocation, of users drawn in proportion to their activity. Beside it, in the same
/// run and on the same elements: the reference, a table clustered per user (key signal, user, time,
/// id) read with one range scan. Figures are per read (OperationsPerInvoke).
/// </summary>
[MemoryDiagnoser]
public class OnlineStoreReadBenchmarks
{
    private const int Elements = 1_500_000;
    private const int Batch = 10_000;
    private const int Reads = 1_000;
    private const int Limit = 500;
    private string _directory = "";
    private IOnlineStore? _store;
    private SqliteConnection? _clustered;
    private SqliteCommand? _clusteredRead;
    private long[] _users = [];

    /// <summary>The store's merge fan-in (runs of one tier merged together).</summary>
    [Params(4, 8)]
    public int FanIn { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("weft-bench-online-read-").FullName;
        var elements = OnlineStoreAppendBenchmarks.Generate(Elements);
        var random = new Random(7);
        _users = new long[Reads];
        for (int i = 0; i < Reads; i++)
        {
            _users[i] = elements[random.Next(Elements)].UserId; // users in proportion to their activity, as serving sees them
        }

#pragma warning disable VSTHRD002 // the in-process toolchain does not await an async GlobalSetup: block on it here
        Task.Run(() => LoadAsync(elements)).GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
    }

    private async Task LoadAsync(OnlineElement[] elements)
    {
        var path = Path.Combine(_directory, "online.db");
        var tuning = OnlineStoreTuning.Default with { MergeFanIn = FanIn };
        await using (var store = await OnlineStores.OpenSqliteAsync(path, tuning, CancellationToken.None))
        {
            for (int i = 0; i < elements.Length; i += Batch)
            {
                await store.AppendAsync("clicks", new ArraySegment<OnlineElement>(elements, i, Math.Min(Batch, elements.Length - i)), null, CancellationToken.None);
            }

            await OnlineStoreAppendBenchmarks.WaitForMergesAsync(store);
        }

        _store = await OnlineStores.OpenSqliteAsync(path, tuning, CancellationToken.None);
        _clustered = new SqliteConnection($"Data Source={Path.Combine(_directory, "clustered.db")};Pooling=False");
        await _clustered.OpenAsync();
        using (var setup = _clustered.CreateCommand())
        {
            setup.CommandText = "PRAGMA journal_mode = WAL; " + OnlineStoreAppendBenchmarks.ClusteredTable + ";";
            await setup.ExecuteNonQueryAsync();
        }

        OnlineStoreAppendBenchmarks.Insert(_clustered, "INSERT INTO e VALUES ($s, $u, $t, $i, $g, $p) ON CONFLICT DO NOTHING", elements, 50_000);
        _clusteredRead = _clustered.CreateCommand();
        _clusteredRead.CommandText = "SELECT user_id, event_time, event_id, ingest_time, payload FROM e WHERE signal = 'clicks' AND user_id = $u ORDER BY event_time DESC, event_id LIMIT 500";
        _clusteredRead.Parameters.Add("$u", SqliteType.Integer);
        await _clusteredRead.PrepareAsync();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
#pragma warning disable VSTHRD002 // BenchmarkDotNet's cleanup is synchronous
        _store?.DisposeAsync().AsTask().GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
        _clusteredRead?.Dispose();
        _clustered?.Dispose();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Description = "Weft SQLite store (sorted runs)", OperationsPerInvoke = Reads)]
    public async Task<int> WeftStore()
    {
        int total = 0;
        var options = new OnlineReadOptions { Limit = Limit };
        foreach (var user in _users)
        {
            total += (await _store!.ReadAsync("clicks", user, options, CancellationToken.None)).Count;
        }

        return total;
    }

    [Benchmark(Baseline = true, Description = "reference: table clustered per user", OperationsPerInvoke = Reads)]
    public int ClusteredPerUser()
    {
        int total = 0;
        foreach (var user in _users)
        {
            _clusteredRead!.Parameters[0].Value = user;
            using var reader = _clusteredRead.ExecuteReader();
            while (reader.Read())
            {
                var element = new OnlineElement(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetInt64(3), (byte[])reader.GetValue(4));
                total += element.Payload.Length > 0 ? 1 : 0;
            }
        }

        return total;
    }
}
