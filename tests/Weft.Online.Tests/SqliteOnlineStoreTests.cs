using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Data.Sqlite;
using Weft.Online.Sqlite;
using Xunit;

namespace Weft.Online.Tests;

/// <summary>The contract against the embedded store, one SQLite file per test in its own temp directory.</summary>
public sealed class SqliteOnlineStoreTests : OnlineStoreContract
{
    private readonly string _directory = Directory.CreateTempSubdirectory("weft-online-sqlite-").FullName;

    private string DatabasePath => Path.Combine(_directory, "online.db");

    private protected override Task<IOnlineStore> OpenStoreAsync(OnlineStoreTuning tuning) =>
        OnlineStores.OpenSqliteAsync(DatabasePath, tuning, CancellationToken.None);

    protected override async Task BreakCheckpointWritesAsync()
    {
        await using var connection = await OpenRawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = """
            CREATE TRIGGER weft_test_break BEFORE INSERT ON weft_online_checkpoints
            BEGIN SELECT RAISE(ABORT, 'checkpoint writes are broken by the test'); END
            """;
        await command.ExecuteNonQueryAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task<SqliteConnection> OpenRawAsync()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString());
        await connection.OpenAsync();
        return connection;
    }

    [Fact]
    public async Task Describe_names_the_database_file()
    {
        var store = await OpenAsync();

        store.Describe.Should().Be("sqlite:" + DatabasePath);
    }

    [Fact]
    public async Task Opening_a_store_in_a_missing_directory_fails_naming_the_path_and_the_cause()
    {
        var path = Path.Combine(_directory, "missing", "online.db");

        var open = () => OnlineStores.OpenSqliteAsync(path, CancellationToken.None);

        var failure = (await open.Should().ThrowAsync<OnlineStoreException>()).Which;
        failure.Message.Should().Contain(path).And.Contain("does not exist");
        failure.IsTransient.Should().BeFalse();
    }

    [Fact]
    public async Task Opening_a_file_that_is_not_a_database_fails_naming_the_path_and_the_cause()
    {
        await File.WriteAllTextAsync(DatabasePath, new string('x', 4096));

        var open = () => OnlineStores.OpenSqliteAsync(DatabasePath, CancellationToken.None);

        (await open.Should().ThrowAsync<OnlineStoreException>()).Which.Message.Should().Contain(DatabasePath).And.Contain("not a database");
    }

    [Fact]
    public async Task Opening_another_applications_database_fails_naming_its_tables_and_leaves_the_file_unchanged()
    {
        await using (var connection = await OpenRawAsync())
        {
            await using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
                INSERT INTO customers (name) VALUES ('ada'), ('grace');
                CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, customer INTEGER);
                """;
            await command.ExecuteNonQueryAsync();
        }

        var before = await File.ReadAllBytesAsync(DatabasePath);

        var open = () => OnlineStores.OpenSqliteAsync(DatabasePath, CancellationToken.None);

        var failure = (await open.Should().ThrowAsync<OnlineStoreException>()).Which;
        failure.Message.Should().Contain(DatabasePath).And.Contain("not a Weft online store").And.Contain("'customers'").And.Contain("'orders'");
        failure.IsTransient.Should().BeFalse();
        (await File.ReadAllBytesAsync(DatabasePath)).Should().Equal(before, "nothing was added to the file, nor its journal mode changed");
        File.Exists(DatabasePath + "-wal").Should().BeFalse();
    }

    [Fact]
    public async Task A_store_file_that_also_holds_a_table_of_the_users_own_opens()
    {
        await using (var store = await OnlineStores.OpenSqliteAsync(DatabasePath, CancellationToken.None))
        {
            await store.AppendAsync("s", [new OnlineElement(1, 10, "e1", 10, [1])], null, CancellationToken.None);
        }

        await using (var connection = await OpenRawAsync())
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE notes (text TEXT)";
            await command.ExecuteNonQueryAsync();
        }

        await using var reopened = await OnlineStores.OpenSqliteAsync(DatabasePath, CancellationToken.None);
        (await reopened.ReadAsync("s", 1, OnlineReadOptions.Default, CancellationToken.None)).Should().ContainSingle().Which.EventId.Should().Be("e1");
    }

    [Fact]
    public async Task The_file_uses_the_write_ahead_log_and_a_read_is_an_index_seek_per_run_of_the_user()
    {
        await OpenAsync();
        await using var connection = await OpenRawAsync();
        await using var mode = connection.CreateCommand();
        mode.CommandText = "PRAGMA journal_mode";
        await using var plan = connection.CreateCommand();
        plan.CommandText = "EXPLAIN QUERY PLAN " + SqliteSession.UserBlocksSql;
        plan.Parameters.AddWithValue("?1", "s");
        plan.Parameters.AddWithValue("?2", 1L);

        var details = new List<string>();
        await using (var reader = await plan.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                details.Add(reader.GetString(3));
            }
        }

        ((string?)await mode.ExecuteScalarAsync()).Should().Be("wal");
        details.Should().Contain(d => d.Contains("USING COVERING INDEX weft_online_blocks_key (signal=? AND run=? AND user_hi=?)", StringComparison.Ordinal))
            .And.Contain(d => d.Contains("USING COVERING INDEX weft_online_blocks_key (signal=? AND run=? AND user_hi>?)", StringComparison.Ordinal))
            .And.Contain(d => d.StartsWith("SEARCH r USING PRIMARY KEY (signal=?)", StringComparison.Ordinal))
            .And.Contain(d => d.StartsWith("SEARCH weft_online_blocks USING INTEGER PRIMARY KEY (rowid=?)", StringComparison.Ordinal))
            .And.NotContain(d => d.StartsWith("SCAN", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_new_file_packs_several_blocks_per_page_and_a_file_made_with_small_pages_keeps_them_and_works()
    {
        await using (var store = await OnlineStores.OpenSqliteAsync(DatabasePath, CancellationToken.None))
        {
            (await store.AppendAsync("s", [E(1, 10, "a")], null, CancellationToken.None)).Should().Be(1);
        }

        (await PageSizeAsync()).Should().BeGreaterThanOrEqualTo(4 * StoreBlock.TargetBytes, "each WAL frame and checkpoint write is one page: small pages mean a system call per block");

        // A file made before (SQLite's default 4 KiB pages): its page size cannot change without a
        // rewrite, so it keeps it, and the store still reads and writes it (a table of the store's names
        // stands for the older file's own: a file of other tables only is refused).
        File.Delete(DatabasePath);
        await using (var connection = await OpenRawAsync())
        {
            await using var create = connection.CreateCommand();
            create.CommandText = "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE weft_online_marker (x INTEGER);";
            await create.ExecuteNonQueryAsync();
        }

        var elements = Enumerable.Range(0, 400).Select(i => E(i % 7, i, $"e{i}")).ToList();
        await using (var store = await OnlineStores.OpenSqliteAsync(DatabasePath, CancellationToken.None))
        {
            (await store.AppendAsync("s", elements, null, CancellationToken.None)).Should().Be(400);
        }

        (await PageSizeAsync()).Should().Be(4096);
        await using var reopened = await OnlineStores.OpenSqliteAsync(DatabasePath, CancellationToken.None);
        Show(await reopened.ReadAsync("s", 3, OnlineReadOptions.Default, CancellationToken.None))
            .Should().Equal(Show(ReferenceRead(elements, 3, OnlineReadOptions.Default)));
    }

    private async Task<long> PageSizeAsync()
    {
        await using var connection = await OpenRawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA page_size";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task Many_appends_are_merged_into_few_runs_and_reads_stay_exact_while_merges_run()
    {
        var store = (SqliteOnlineStore)await OpenAsync(SmallChunks with { MergeBaseRows = 16, MergeFanIn = 3, MergeChunkRows = 11 });
        var random = new Random(11);
        var stored = new Dictionary<(long, long, string), OnlineElement>();
        for (int batch = 0; batch < 60; batch++)
        {
            var elements = Enumerable.Range(0, random.Next(1, 30))
                .Select(_ => E(random.Next(0, 12), random.Next(0, 40), $"e{random.Next(0, 6)}", ingest: batch)).ToList();
            await store.AppendAsync("s", elements, null, OnlineDurability.Immediate, CancellationToken.None);
            foreach (var e in elements)
            {
                stored.TryAdd((e.UserId, e.EventTimeMicros, e.EventId), e);
            }

            // Reads while merges move rows between runs: every read sees each element exactly once.
            long user = random.Next(0, 12);
            Show(await store.ReadAsync("s", user, OnlineReadOptions.Default, CancellationToken.None))
                .Should().Equal(Show(ReferenceRead(stored.Values, user, OnlineReadOptions.Default)), $"user {user} after batch {batch}");
        }

        await store.WaitForMergesAsync();

        store.MergesDone.Should().BeGreaterThan(0);
        var runs = await RunsAsync("s");
        var policy = new RunMergePolicy(16, 3);
        runs.GroupBy(r => policy.Tier(r.Rows)).Should().OnlyContain(tier => tier.Count() < 3, "a tier holding fan-in runs is merged");
        runs.Sum(r => r.Rows).Should().Be(stored.Count);
        for (long user = 0; user < 12; user++)
        {
            Show(await store.ReadAsync("s", user, OnlineReadOptions.Default, CancellationToken.None))
                .Should().Equal(Show(ReferenceRead(stored.Values, user, OnlineReadOptions.Default)), $"user {user}");
        }
    }

    [Fact]
    public async Task Appends_are_copied_from_the_write_ahead_log_into_the_database_file_in_the_background_while_the_store_is_open()
    {
        var store = (SqliteOnlineStore)await OpenAsync(SmallChunks with { CheckpointInterval = TimeSpan.FromMilliseconds(20) });
        var elements = Enumerable.Range(0, 50).Select(i => E(i % 5, i, $"e{i}")).ToList();
        await store.AppendAsync("s", elements, null, OnlineDurability.Immediate, CancellationToken.None);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (store.CheckpointsDone == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        // The database file alone, without its WAL: what a checkpoint copied, and nothing else.
        store.CheckpointsDone.Should().BeGreaterThan(0);
        var copy = Path.Combine(_directory, "copy.db");
        File.Copy(DatabasePath, copy);
        File.Exists(DatabasePath + "-wal").Should().BeTrue("the store is open: its WAL still exists");
        await using var copied = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = copy, Pooling = false }.ToString());
        await copied.OpenAsync();
        await using var count = copied.CreateCommand();
        count.CommandText = "SELECT sum(rows) FROM weft_online_blocks WHERE signal = 's'";
        ((long)(await count.ExecuteScalarAsync())!).Should().Be(elements.Count);
    }

    [Fact]
    public async Task A_merge_cut_short_leaves_every_element_readable_once_and_the_next_store_finishes_it()
    {
        // Payloads of 1 kB: a run of 10 spans several blocks, so a chunk of a merge can end inside a run.
        var elements = Enumerable.Range(0, 40).Select(i => E(i % 7, i, $"e{i}", payload: new string((char)('a' + (i % 26)), 1_000))).ToList();
        var tuning = SmallChunks with { MergeBaseRows = 1_000, MergeFanIn = 100 }; // no merges of its own
        var first = await OpenAsync(tuning);
        for (int i = 0; i < elements.Count; i += 10)
        {
            await first.AppendAsync("s", elements.GetRange(i, 10), null, CancellationToken.None);
        }

        await first.DisposeAsync();
        var runs = await RunsAsync("s");
        runs.Should().HaveCount(4);

        // One chunk of a merge, then the process is gone.
        await using (var session = await SqliteSession.OpenAsync(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString(), reader: false, CancellationToken.None))
        {
            long target = session.AllocateRun();
            session.MergeChunk("s", [.. runs.Select(r => r.Run)], target, long.MinValue, chunkRows: 8).Should().NotBeNull();
        }

        (await RunsAsync("s")).Should().HaveCount(5, "the target run and the four partly moved sources");
        var reopened = (SqliteOnlineStore)await OpenAsync(SmallChunks with { MergeBaseRows = 1_000, MergeFanIn = 2 });
        for (long user = 0; user < 7; user++)
        {
            Show(await reopened.ReadAsync("s", user, OnlineReadOptions.Default, CancellationToken.None))
                .Should().Equal(Show(ReferenceRead(elements, user, OnlineReadOptions.Default)), $"user {user}");
        }

        (await reopened.AppendAsync("s", [E(3, 100, "new"), .. elements.Take(5)], null, OnlineDurability.Immediate, CancellationToken.None)).Should().Be(1, "the others are stored already");
        await reopened.WaitForMergesAsync();
        (await RunsAsync("s")).Should().HaveCount(1);
        Show(await reopened.ReadAsync("s", 3, OnlineReadOptions.Default, CancellationToken.None))
            .Should().Equal(Show(ReferenceRead([.. elements, E(3, 100, "new")], 3, OnlineReadOptions.Default)));
    }

    [Fact]
    public async Task Two_writers_merging_at_once_one_taking_the_others_unfinished_target_lose_nothing()
    {
        // Two processes on one file, each merging: the second takes the first's target (part-filled) as a
        // source and finishes while the first still moves users below where the second has got to.
        // 1 kB payloads: three elements a block, so chunks end inside runs.
        var elements = Enumerable.Range(0, 80).Select(i => E(i % 20, i, $"e{i}", payload: new string((char)('a' + (i % 26)), 1_000))).ToList();
        var tuning = SmallChunks with { MergeBaseRows = 1_000, MergeFanIn = 100 }; // no merges of its own
        var first = await OpenAsync(tuning);
        for (int i = 0; i < elements.Count; i += 20)
        {
            await first.AppendAsync("s", elements.GetRange(i, 20), null, CancellationToken.None);
        }

        await first.DisposeAsync();
        var runs = (await RunsAsync("s")).Select(r => r.Run).ToList();
        runs.Should().HaveCount(4);
        var connectionString = new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString();
        await using (var a = await SqliteSession.OpenAsync(connectionString, reader: false, CancellationToken.None))
        await using (var b = await SqliteSession.OpenAsync(connectionString, reader: false, CancellationToken.None))
        {
            long targetA = a.AllocateRun();
            List<long> sourcesA = [runs[1], runs[0], runs[2], runs[3]];
            long? lowA = a.MergeChunk("s", sourcesA, targetA, long.MinValue, chunkRows: 8); // users 0..2 into A's target

            long targetB = b.AllocateRun();
            List<long> sourcesB = [runs[0], targetA];
            long? lowB = b.MergeChunk("s", sourcesB, targetB, long.MinValue, chunkRows: 24); // users up to 14 of both
            lowB.Should().NotBeNull();

            lowA = a.MergeChunk("s", sourcesA, targetA, lowA!.Value, chunkRows: 8); // users 3..5 into A's target, below B's chunks now
            while (lowB is { } from)
            {
                lowB = b.MergeChunk("s", sourcesB, targetB, from, chunkRows: 24);
            }

            while (lowA is { } from)
            {
                lowA = a.MergeChunk("s", sourcesA, targetA, from, chunkRows: 8);
            }
        }

        var store = await OpenAsync(tuning);
        (await store.StatsAsync("s", CancellationToken.None)).Elements.Should().Be(elements.Count);
        (await RunsAsync("s")).Sum(r => r.Rows).Should().Be(elements.Count);
        for (long user = 0; user < 20; user++)
        {
            Show(await store.ReadAsync("s", user, OnlineReadOptions.Default, CancellationToken.None))
                .Should().Equal(Show(ReferenceRead(elements, user, OnlineReadOptions.Default)), $"user {user}");
        }
    }

    [Fact]
    public async Task Disposal_racing_appends_that_start_merges_waits_for_the_background_work_and_loses_nothing()
    {
        // A merge or checkpoint task that outlived disposal read the disposed token source and failed
        // with no one to see it: the runtime reports that only when the task is collected.
        var unobserved = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        void Note(object? sender, UnobservedTaskExceptionEventArgs e)
        {
            if (e.Exception.ToString().Contains(typeof(SqliteOnlineStore).FullName!, StringComparison.Ordinal))
            {
                unobserved.Enqueue(e.Exception); // other tests' tasks run in this process too
            }
        }

        TaskScheduler.UnobservedTaskException += Note;
        long added = 0;
        try
        {
            for (int round = 0; round < 20; round++)
            {
                added += await AppendWhileDisposingAsync(round);
            }

            // Collected in a helper's frame, so no local here keeps a store (and its tasks) reachable.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= Note;
        }

        unobserved.Should().BeEmpty();
        var reopened = await OpenAsync();
        (await reopened.StatsAsync("s", CancellationToken.None)).Elements.Should().Be(added, "every append that returned is in the file");
    }

    /// <summary>
    /// Appends on another thread, each making a merge due, and disposes the store while one is under
    /// way; returns how many elements the appends that returned stored.
    /// </summary>
    private async Task<long> AppendWhileDisposingAsync(int round)
    {
        var store = await OnlineStores.OpenSqliteAsync(DatabasePath, SmallChunks with { MergeBaseRows = 1_000_000, MergeFanIn = 2, MergeChunkRows = 50, CheckpointInterval = TimeSpan.Zero }, CancellationToken.None);
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var appending = Task.Run(async () =>
        {
            long stored = 0;
            for (int batch = 0; ; batch++)
            {
                var elements = Enumerable.Range(0, 400).Select(i => E(i % 40, (((long)round * 1_000) + batch) * 1_000 + i, "e", payload: new string('p', 100))).ToList();
                try
                {
                    stored += await store.AppendAsync("s", elements, null, OnlineDurability.Immediate, CancellationToken.None);
                }
                catch (ObjectDisposedException)
                {
                    return stored;
                }

                first.TrySetResult();
            }
        });

        await first.Task;
        await store.DisposeAsync();

        // A hang guard, not a timing assertion: an append that waited for the write lock must end too.
        return await appending.WaitAsync(TimeSpan.FromMinutes(2));
    }

    /// <summary>60 users of 10 elements with 1 kB payloads: about three elements a block, so a signal scan reads some 200 blocks.</summary>
    private static List<OnlineElement> ManyBlocks() =>
        [.. Enumerable.Range(0, 600).Select(i => E(i / 10, i % 10, $"e{i}", payload: new string((char)('a' + (i % 26)), 1_000)))];

    [Fact]
    public async Task Stats_and_trim_scans_stop_at_a_cancellation_mid_scan_and_the_cancelled_trim_deletes_nothing()
    {
        var store = (SqliteOnlineStore)await OpenAsync(SmallChunks with { MergeBaseRows = 1_000_000 });
        var elements = ManyBlocks();
        await store.AppendAsync("s", elements, null, OnlineDurability.Immediate, CancellationToken.None);
        int blocks = 0;
        store.ScanStep = () => blocks++;
        (await store.StatsAsync("s", CancellationToken.None)).Elements.Should().Be(elements.Count);
        blocks.Should().BeGreaterThan(100, "the scan reads many blocks");

        // Cancelled at the fifth block: the scan stops there (it went on to the end, checking only at its start).
        int steps = 0;
        using (var cancel = new CancellationTokenSource())
        {
            store.ScanStep = () =>
            {
                if (++steps == 5)
                {
                    cancel.Cancel();
                }
            };
            await FluentActions.Awaiting(async () => await store.StatsAsync("s", cancel.Token)).Should().ThrowAsync<OperationCanceledException>();
            steps.Should().Be(5);
        }

        steps = 0;
        using (var cancel = new CancellationTokenSource())
        {
            store.ScanStep = () =>
            {
                if (++steps == 5)
                {
                    cancel.Cancel();
                }
            };
            await FluentActions.Awaiting(async () => await store.TrimAsync("s", 3, cancel.Token)).Should().ThrowAsync<OperationCanceledException>();
            steps.Should().Be(5);
        }

        store.ScanStep = null;
        for (long user = 0; user < 60; user++)
        {
            Show(await store.ReadAsync("s", user, OnlineReadOptions.Default, CancellationToken.None))
                .Should().Equal(Show(ReferenceRead(elements, user, OnlineReadOptions.Default)), $"user {user}: the cancelled trim deleted nothing");
        }

        (await store.TrimAsync("s", 3, CancellationToken.None)).Should().Be(60 * 7);
        (await store.StatsAsync("s", CancellationToken.None)).Elements.Should().Be(60 * 3);
    }

    [Fact]
    public async Task A_trim_cancelled_in_a_write_step_keeps_the_steps_before_it_and_leaves_the_rest_whole()
    {
        var store = (SqliteOnlineStore)await OpenAsync(SmallChunks with { MergeBaseRows = 1_000_000, TrimChunkRows = 4 });
        var elements = ManyBlocks();
        await store.AppendAsync("s", elements, null, OnlineDurability.Immediate, CancellationToken.None);
        int blocks = 0;
        store.ScanStep = () => blocks++;
        await store.StatsAsync("s", CancellationToken.None);

        // The scan's blocks, then one step per user: cancelled at the second user of the second step (users 4..7).
        int steps = 0;
        using var cancel = new CancellationTokenSource();
        store.ScanStep = () =>
        {
            if (++steps == blocks + 6)
            {
                cancel.Cancel();
            }
        };
        await FluentActions.Awaiting(async () => await store.TrimAsync("s", 3, cancel.Token)).Should().ThrowAsync<OperationCanceledException>();

        store.ScanStep = null;
        for (long user = 0; user < 60; user++)
        {
            var expected = ReferenceRead(elements, user, OnlineReadOptions.Default);
            Show(await store.ReadAsync("s", user, OnlineReadOptions.Default, CancellationToken.None))
                .Should().Equal(Show(user < 4 ? expected.Take(3) : expected), $"user {user}: the first step committed, the second rolled back whole");
        }

        (await store.TrimAsync("s", 3, CancellationToken.None)).Should().Be(56 * 7);
        (await store.StatsAsync("s", CancellationToken.None)).Elements.Should().Be(60 * 3);
    }

    [Fact]
    public async Task An_open_cancelled_while_it_waits_for_the_write_lock_leaves_the_file_closed()
    {
        await (await OpenAsync()).DisposeAsync(); // a store file in WAL mode
        using var cancel = new CancellationTokenSource();
        Task<IOnlineStore> open;
        await using (var holder = await OpenRawAsync())
        {
            // Another process writing: the open's schema transaction waits for its write lock.
            await using (var begin = holder.CreateCommand())
            {
                begin.CommandText = "BEGIN IMMEDIATE";
                await begin.ExecuteNonQueryAsync();
            }

            int held = OpenHandles(DatabasePath);
            open = Task.Run(() => OnlineStores.OpenSqliteAsync(DatabasePath, SmallChunks, cancel.Token));
            while (OpenHandles(DatabasePath) == held)
            {
                open.IsCompleted.Should().BeFalse("the open waits for the write lock");
                await Task.Delay(10);
            }

            await Task.Delay(300); // past its connection's set-up, into the wait
            await cancel.CancelAsync();
            await using (var rollback = holder.CreateCommand())
            {
                rollback.CommandText = "ROLLBACK";
                await rollback.ExecuteNonQueryAsync();
            }

            await open.Awaiting(t => t).Should().ThrowAsync<OperationCanceledException>();
        }

        OpenHandles(DatabasePath).Should().Be(0, "the failed open closes the connection it opened");
    }

    /// <summary>This process's open file descriptors on <paramref name="path"/> (Linux).</summary>
    private static int OpenHandles(string path) =>
        new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos().Count(fd =>
        {
            try
            {
                return fd.LinkTarget == path;
            }
            catch (IOException)
            {
                return false; // closed meanwhile
            }
        });

    [Fact]
    public async Task A_file_of_the_first_layout_is_migrated_into_runs_on_open_losing_nothing()
    {
        var elements = new[] { E(1, 10, "a", ingest: 3), E(1, 20, "b", ingest: 4), E(2, 5, "c", ingest: 5) };
        await using (var connection = await OpenRawAsync())
        {
            await using var create = connection.CreateCommand();
            create.CommandText = """
                PRAGMA journal_mode = WAL;
                CREATE TABLE weft_online_elements (signal TEXT NOT NULL, user_id INTEGER NOT NULL, event_time INTEGER NOT NULL, event_id TEXT NOT NULL,
                    ingest_time INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (signal, user_id, event_time DESC, event_id)) WITHOUT ROWID;
                CREATE TABLE weft_online_checkpoints (consumer TEXT NOT NULL, source_partition TEXT NOT NULL, last_offset INTEGER NOT NULL,
                    PRIMARY KEY (consumer, source_partition)) WITHOUT ROWID;
                INSERT INTO weft_online_checkpoints VALUES ('job', 'events/0', 41);
                """;
            await create.ExecuteNonQueryAsync();
            foreach (var (signal, e) in elements.Select(e => ("s", e)).Append(("t", E(9, 1, "z"))))
            {
                await InsertOldLayoutAsync(connection, "INSERT INTO weft_online_elements VALUES ($s, $u, $t, $i, $g, $p)", signal, 0, e);
            }
        }

        var store = await OpenAsync();

        Show(await store.ReadAsync("s", 1, OnlineReadOptions.Default, CancellationToken.None)).Should().Equal(Show(ReferenceRead(elements, 1, OnlineReadOptions.Default)));
        Show(await store.ReadAsync("s", 2, OnlineReadOptions.Default, CancellationToken.None)).Should().Equal(Show(elements[2]));
        Show(await store.ReadAsync("t", 9, OnlineReadOptions.Default, CancellationToken.None)).Should().Equal(Show(E(9, 1, "z")));
        (await store.AppendAsync("s", [elements[0]], null, CancellationToken.None)).Should().Be(0, "migrated keys count as stored");
        (await store.ReadCheckpointAsync("job", CancellationToken.None)).Should().Equal(new Dictionary<string, long> { ["events/0"] = 41 });
    }

    [Fact]
    public async Task Two_stores_on_one_file_never_store_a_key_twice_whichever_wrote_it_first()
    {
        var first = await OpenAsync();
        await using var second = await OnlineStores.OpenSqliteAsync(DatabasePath, SmallChunks, CancellationToken.None);
        var a = Enumerable.Range(0, 30).Select(i => E(i % 4, i, $"a{i}")).ToList();
        var b = Enumerable.Range(0, 30).Select(i => E(i % 4, i, $"b{i}")).ToList();

        (await first.AppendAsync("s", a, null, CancellationToken.None)).Should().Be(30);
        (await second.AppendAsync("s", [.. a, .. b], null, CancellationToken.None)).Should().Be(30, "the first store's keys are on file");
        // The first store's own filter predates the second store's run: it must not trust it.
        (await first.AppendAsync("s", [.. b, E(9, 1, "new")], null, CancellationToken.None)).Should().Be(1);
        (await second.AppendAsync("s", [E(9, 1, "new")], null, CancellationToken.None)).Should().Be(0);

        (await first.StatsAsync("s", CancellationToken.None)).Elements.Should().Be(61);
        Show(await second.ReadAsync("s", 2, OnlineReadOptions.Default, CancellationToken.None))
            .Should().Equal(Show(ReferenceRead([.. a, .. b], 2, OnlineReadOptions.Default)));
    }

    [Fact]
    public async Task Keys_stay_unique_past_the_size_the_writers_filter_was_first_built_for()
    {
        var store = await OpenAsync(SmallChunks with { MergeBaseRows = 1_000_000 }); // no merges: many runs
        var all = Enumerable.Range(0, 150_000).Select(i => E(i % 5_000, i, $"e{i}")).ToList();
        long added = 0;
        foreach (var batch in all.Chunk(10_000))
        {
            added += await store.AppendAsync("s", batch, null, CancellationToken.None);
        }

        // Every key again, and again mixed with new ones: the filter has been rebuilt larger meanwhile.
        var again = all.Where((_, i) => i % 7 == 0).Append(E(1, -1, "new")).ToList();
        added.Should().Be(all.Count);
        (await store.AppendAsync("s", again, null, CancellationToken.None)).Should().Be(1);
        (await store.StatsAsync("s", CancellationToken.None)).Elements.Should().Be(all.Count + 1);
    }

    [Fact]
    public async Task A_damaged_block_fails_the_read_naming_the_store_and_the_damage()
    {
        var store = await OpenAsync();
        await store.AppendAsync("s", [E(1, 1, "a"), E(2, 2, "b")], null, CancellationToken.None);
        await using (var connection = await OpenRawAsync())
        {
            await using var damage = connection.CreateCommand();
            damage.CommandText = "UPDATE weft_online_blocks SET data = x'01050505'";
            await damage.ExecuteNonQueryAsync();
        }

        var read = () => store.ReadAsync("s", 1, OnlineReadOptions.Default, CancellationToken.None).AsTask();

        (await read.Should().ThrowAsync<OnlineStoreException>()).Which.Message.Should().Contain(DatabasePath).And.Contain("corrupt");
    }

    [Fact]
    public async Task A_file_of_the_row_per_element_layout_is_migrated_into_blocks_on_open_losing_nothing()
    {
        var elements = new[] { E(1, 10, "a", ingest: 3), E(1, 20, "b", ingest: 4), E(2, 5, "c", ingest: 5), E(1, 30, "d", ingest: 6) };
        await using (var connection = await OpenRawAsync())
        {
            await using var create = connection.CreateCommand();
            create.CommandText = """
                PRAGMA journal_mode = WAL;
                CREATE TABLE weft_online_rows (signal TEXT NOT NULL, run INTEGER NOT NULL, user_id INTEGER NOT NULL, event_time INTEGER NOT NULL,
                    event_id TEXT NOT NULL, ingest_time INTEGER NOT NULL, payload BLOB NOT NULL,
                    PRIMARY KEY (signal, run, user_id, event_time DESC, event_id)) WITHOUT ROWID;
                CREATE TABLE weft_online_keys (signal TEXT NOT NULL, event_time INTEGER NOT NULL, event_id TEXT NOT NULL, user_id INTEGER NOT NULL,
                    PRIMARY KEY (signal, event_time, event_id, user_id)) WITHOUT ROWID;
                CREATE TABLE weft_online_runs (signal TEXT NOT NULL, run INTEGER NOT NULL, rows INTEGER NOT NULL, PRIMARY KEY (signal, run)) WITHOUT ROWID;
                CREATE TABLE weft_online_meta (name TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO weft_online_meta VALUES ('last_run', 2);
                INSERT INTO weft_online_runs VALUES ('s', 1, 3), ('s', 2, 1), ('t', 2, 1);
                """;
            await create.ExecuteNonQueryAsync();
            var rows = elements.Select((e, i) => (Signal: "s", Run: i < 3 ? 1L : 2L, E: e)).Append(("t", 2L, E(9, 1, "z")));
            foreach (var (signal, run, e) in rows)
            {
                await InsertOldLayoutAsync(connection, "INSERT INTO weft_online_rows VALUES ($s, $r, $u, $t, $i, $g, $p); INSERT INTO weft_online_keys VALUES ($s, $t, $i, $u);", signal, run, e);
            }
        }

        var store = await OpenAsync();

        Show(await store.ReadAsync("s", 1, OnlineReadOptions.Default, CancellationToken.None)).Should().Equal(Show(ReferenceRead(elements, 1, OnlineReadOptions.Default)));
        Show(await store.ReadAsync("s", 2, OnlineReadOptions.Default, CancellationToken.None)).Should().Equal(Show(elements[2]));
        Show(await store.ReadAsync("t", 9, OnlineReadOptions.Default, CancellationToken.None)).Should().Equal(Show(E(9, 1, "z")));
        (await store.AppendAsync("s", [elements[3], E(3, 1, "new")], null, CancellationToken.None)).Should().Be(1, "migrated keys count as stored");
        (await RunsAsync("s")).Sum(r => r.Rows).Should().Be(5);
        await using (var check = await OpenRawAsync())
        {
            await using var tables = check.CreateCommand();
            tables.CommandText = "SELECT count(*) FROM sqlite_master WHERE name IN ('weft_online_rows', 'weft_online_keys')";
            ((long)(await tables.ExecuteScalarAsync())!).Should().Be(0, "the old layout's tables are dropped");
        }
    }

    /// <summary>One step of a store's life: append a batch (some payloads large, so runs span blocks), or trim to a keep.</summary>
    public sealed record StoreStep(IReadOnlyList<OnlineElement> Batch, int? TrimTo)
    {
        public override string ToString() => TrimTo is { } keep
            ? $"trim {keep}"
            : $"append [{string.Join(", ", Batch.Select(e => $"{e.UserId}/{e.EventTimeMicros}/{e.EventId}/{e.Payload.Length}B"))}]";
    }

    private static readonly Gen<StoreStep> StepGen = Gen.Frequency(
        (6, from elements in (from user in Gen.Choose(0, 5)
                              from time in Gen.Choose(0, 30)
                              from id in Gen.Elements("a", "b", "é")
                              from size in Gen.Frequency((1, Gen.Choose(0, 20)), (1, Gen.Choose(500, 1_600)))
                              select (user, time, id, size)).ListOf()
            select new StoreStep([.. elements.Select((e, i) => new OnlineElement(e.user, e.time, e.id, i, new byte[e.size]))], null)),
        (2, Gen.Choose(1, 6).Select(keep => new StoreStep([], keep))));

    [Fact]
    public async Task Appends_merges_and_trims_in_any_order_keep_reads_equal_to_a_reference_model()
    {
        // Tiny tiers and chunks: merges run after a few appends and stop inside runs and inside users.
        var store = (SqliteOnlineStore)await OpenAsync(SmallChunks with { MergeBaseRows = 4, MergeFanIn = 2, MergeChunkRows = 3, TrimChunkRows = 2 });
        long[] users = [0, 1, 2, 3, 4, 5];
        int run = 0;
        var property = Prop.ForAll(StepGen.ListOf().ToArbitrary(), async steps =>
        {
            var signal = $"m{Interlocked.Increment(ref run)}";
            var model = new Dictionary<(long, long, string), OnlineElement>();
            foreach (var step in steps)
            {
                if (step.TrimTo is { } keep)
                {
                    await store.TrimAsync(signal, keep, CancellationToken.None);
                    foreach (var user in users)
                    {
                        foreach (var gone in ReferenceRead(model.Values, user, OnlineReadOptions.Default).Skip(keep))
                        {
                            model.Remove((gone.UserId, gone.EventTimeMicros, gone.EventId));
                        }
                    }
                }
                else
                {
                    int expected = 0;
                    foreach (var e in step.Batch)
                    {
                        expected += model.TryAdd((e.UserId, e.EventTimeMicros, e.EventId), e) ? 1 : 0;
                    }

                    (await store.AppendAsync(signal, step.Batch, null, OnlineDurability.Immediate, CancellationToken.None)).Should().Be(expected, step.ToString());
                }

                // Reads while merges move elements between runs.
                var many = await store.ReadManyAsync(signal, users, OnlineReadOptions.Default, CancellationToken.None);
                foreach (var user in users)
                {
                    Show(many[user]).Should().Equal(Show(ReferenceRead(model.Values, user, OnlineReadOptions.Default)), $"user {user} after {step}");
                }
            }

            await store.WaitForMergesAsync();
            var stats = await store.StatsAsync(signal, CancellationToken.None);
            (stats.Elements, stats.Users).Should().Be((model.Count, model.Values.Select(e => e.UserId).Distinct().Count()));
            (await RunsAsync(signal)).Sum(r => r.Rows).Should().Be(model.Count);
            foreach (var user in users)
            {
                Show(await store.ReadAsync(signal, user, OnlineReadOptions.Default, CancellationToken.None))
                    .Should().Equal(Show(ReferenceRead(model.Values, user, OnlineReadOptions.Default)), $"user {user} at the end");
            }
        });

        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60).WithEndSize(30).WithReplay(0x5EED, 0x9E3779B97F4A7C15), property);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(15, 0)]
    [InlineData(16, 1)]
    [InlineData(63, 1)]
    [InlineData(64, 2)]
    [InlineData(long.MaxValue, 30)]
    public void A_runs_tier_grows_by_one_per_factor_of_the_fan_in_above_the_base(long rows, int tier)
    {
        new RunMergePolicy(16, 4).Tier(rows).Should().Be(tier);
    }

    [Fact]
    public void The_policy_merges_the_oldest_fan_in_runs_of_the_lowest_full_tier_largest_first()
    {
        var policy = new RunMergePolicy(10, 3);

        policy.Plan([(1, 500), (2, 9), (3, 12), (4, 3), (5, 40)]).Should().BeNull("no tier holds three runs");
        policy.Plan([(1, 30), (2, 9), (3, 12), (4, 3), (5, 20), (6, 5), (7, 1)]).Should().Equal(2, 6, 4);
        policy.Plan([(1, 25), (2, 12), (3, 15), (4, 3), (5, 30)]).Should().Equal(1, 3, 2);
    }

    /// <summary>Writes an element the way an earlier layout did (<paramref name="sql"/> names its parameters $s $r $u $t $i $g $p).</summary>
    private static async Task InsertOldLayoutAsync(SqliteConnection connection, string sql, string signal, long run, OnlineElement e)
    {
        await using var insert = connection.CreateCommand();
        insert.CommandText = sql;
        insert.Parameters.AddWithValue("$s", signal);
        if (sql.Contains("$r", StringComparison.Ordinal))
        {
            insert.Parameters.AddWithValue("$r", run);
        }

        insert.Parameters.AddWithValue("$u", e.UserId);
        insert.Parameters.AddWithValue("$t", e.EventTimeMicros);
        insert.Parameters.AddWithValue("$i", e.EventId);
        insert.Parameters.AddWithValue("$g", e.IngestTimeMicros);
        insert.Parameters.AddWithValue("$p", e.Payload);
        await insert.ExecuteNonQueryAsync();
    }

    private async Task<List<(long Run, long Rows)>> RunsAsync(string signal)
    {
        await using var connection = await OpenRawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = SqliteSession.RunsSql;
        command.Parameters.AddWithValue("$signal", signal);
        var runs = new List<(long, long)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            runs.Add((reader.GetInt64(0), reader.GetInt64(1)));
        }

        return runs;
    }

    [Theory]
    [InlineData(5, true)] // SQLITE_BUSY
    [InlineData(6, true)] // SQLITE_LOCKED
    [InlineData(261, true)] // SQLITE_BUSY_RECOVERY
    [InlineData(19, false)] // SQLITE_CONSTRAINT
    [InlineData(26, false)] // SQLITE_NOTADB
    public void Busy_and_locked_databases_are_transient_failures_and_others_are_not(int code, bool transient)
    {
        SqliteErrors.IsTransient(new SqliteException("failure", code)).Should().Be(transient);
    }
}
