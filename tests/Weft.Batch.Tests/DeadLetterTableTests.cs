using FluentAssertions;
using Weft.Engine;
using Weft.Parquet.Tests;
using Weft.Storage;
using Xunit;

namespace Weft.Batch.Tests;

public sealed class DeadLetterTableTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static DeadLetter Letter(string id) => new(id, 7, "click", "parse", $"bad {id}", $"events.parquet#{id}", "{}");

    private static async Task<List<string?>> ReasonsAsync(EventTable table)
    {
        var reasons = new List<string?>();
        await foreach (var batch in table.ReadAsync(["reason"]))
        {
            reasons.AddRange(((StringColumn)batch["reason"]).Values);
        }

        reasons.Sort(StringComparer.Ordinal);
        return reasons;
    }

    [Fact]
    public async Task A_repeated_only_once_tag_appends_nothing_even_when_another_handle_committed_it()
    {
        var path = _dir.File("dead_letters");
        var table = await DeadLetterTable.OpenAsync(path, CancellationToken.None);
        var other = await DeadLetterTable.OpenAsync(path, CancellationToken.None);

        await DeadLetterTable.AppendAsync(table, EventLayout.BatchPath, "run-1", "batch:run-1:a", onlyOnce: true, [Letter("a")], 1, CancellationToken.None);
        await DeadLetterTable.AppendAsync(table, EventLayout.BatchPath, "run-1", "batch:run-1:a", onlyOnce: true, [Letter("a")], 2, CancellationToken.None);
        // Committed through the other handle after `table` last looked: its next check must still see it.
        await DeadLetterTable.AppendAsync(other, EventLayout.BatchPath, "run-1", "batch:run-1:b", onlyOnce: true, [Letter("b")], 3, CancellationToken.None);
        await DeadLetterTable.AppendAsync(table, EventLayout.BatchPath, "run-1", "batch:run-1:b", onlyOnce: true, [Letter("b")], 4, CancellationToken.None);
        await DeadLetterTable.AppendAsync(table, EventLayout.BatchPath, "run-1", "batch:run-1:c", onlyOnce: true, [Letter("c")], 5, CancellationToken.None);

        (await ReasonsAsync(table)).Should().Equal("bad a", "bad b", "bad c");
    }

    /// <summary>
    /// Processes of one run (the streams of a group recomputing one changed signal's tail) each check
    /// a chunk's tag and find none before either commits: the tag's commit is conditional, so the one that
    /// loses the race records nothing.
    /// </summary>
    [Fact]
    public async Task Handles_appending_the_same_tags_at_once_record_each_tag_once()
    {
        var path = _dir.File("dead_letters");
        var handles = new List<EventTable>();
        for (int i = 0; i < 4; i++)
        {
            handles.Add(await DeadLetterTable.OpenAsync(path, CancellationToken.None));
        }

        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var chunks = Enumerable.Range(0, 30).Select(i => $"chunk-{i:D2}").ToList();
        var appends = handles.Select(handle => Task.Run(async () =>
        {
            await start.Task;
            foreach (var chunk in chunks)
            {
                await DeadLetterTable.AppendAsync(handle, EventLayout.BatchPath, "run-1", $"batch:run-1:{chunk}", onlyOnce: true, [Letter(chunk)], 1, CancellationToken.None);
            }
        })).ToList();
        start.SetResult();
        await Task.WhenAll(appends);

        (await ReasonsAsync(await DeadLetterTable.OpenAsync(path, CancellationToken.None))).Should().Equal(chunks.Select(c => $"bad {c}"));
    }

    [Fact]
    public async Task Without_only_once_every_append_is_kept()
    {
        var table = await DeadLetterTable.OpenAsync(_dir.File("dead_letters"), CancellationToken.None);

        await DeadLetterTable.AppendAsync(table, EventLayout.StreamPath, "stream", "stream:1", onlyOnce: false, [Letter("a")], 1, CancellationToken.None);
        await DeadLetterTable.AppendAsync(table, EventLayout.StreamPath, "stream", "stream:1", onlyOnce: false, [Letter("a")], 2, CancellationToken.None);

        (await ReasonsAsync(table)).Should().Equal("bad a", "bad a");
    }
}
