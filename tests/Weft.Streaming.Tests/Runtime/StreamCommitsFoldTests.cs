using System.Globalization;
using System.Text.RegularExpressions;
using FluentAssertions;
using Weft.Definitions;
using Weft.Storage;
using Weft.Streaming.Runtime;
using Xunit;
using Weft.Testing;

namespace Weft.Streaming.Tests.Runtime;

/// <summary>
/// A stream that opens its tables folds their stream commits (the newest offset per partition, the
/// newest event time) from the fold a previous reader kept, reading only the commits after it.
/// </summary>
public sealed partial class StreamCommitsFoldTests
{
    [Fact]
    public async Task A_restart_folds_only_the_commits_after_the_kept_fold_and_loses_and_duplicates_nothing()
    {
        using var world = new StreamWorld();
        var first = StreamWorld.Events(700, seed: 11);
        await world.AppendAsync(first);

        await FlushEveryBatchAsync(world); // hundreds of stream commits to the enriched table

        var lakePath = Path.Combine(world.Root, "lake", "enriched", "engagement");
        var table = await DeltaTable.OpenAsync(lakePath);
        var history = await table.GetCommitsAfterAsync(-1);
        history.Count.Should().BeGreaterThan(StreamRuntime.FoldKeepAfter, "the test needs a history long enough to keep a fold");
        (await table.ReadFoldAsync(StreamRuntime.CommitsFold)).Should().BeNull("the first run opened an empty table");

        // A restart reads the whole history once, and keeps the fold of it.
        await using (await world.RunAsync())
        {
        }

        var fold = await table.ReadFoldAsync(StreamRuntime.CommitsFold);
        fold.Should().NotBeNull();
        fold!.Value.Version.Should().Be(history[^1].Version);
        fold.Value.Value.Should().Be(ExpectedFold(history), "the fold of every stream commit: the newest event time, then the newest offset per partition");

        // An early commit's offsets, rewritten far ahead: a reader of the whole history would now take
        // every record for written already. Only the commits after the fold are read, so none is skipped.
        var early = Path.Combine(lakePath, "_delta_log", DeltaLogNamingFor(5));
        await File.WriteAllTextAsync(early, OffsetValue().Replace(await File.ReadAllTextAsync(early), "=999999999"));
        var more = StreamWorld.Events(60, seed: 12, startIndex: 10_000, baseTime: StreamWorld.Start + (2 * StreamWorld.Hour));
        await world.AppendAsync(more);
        await using (await world.RunAsync())
        {
        }

        var expected = await world.ReferenceAsync([.. first, .. more]);
        var ids = Enumerable.Range(0, expected.RowCount).Select(i => (string)expected[StandardColumns.EventId].GetValue(i)!).ToList();
        (await world.StreamLakeIdsAsync()).Should().OnlyHaveUniqueItems().And.HaveSameItemsAs(ids);
    }

    [Fact]
    public async Task A_fold_whose_commit_was_rewritten_or_whose_file_is_damaged_is_ignored()
    {
        using var world = new StreamWorld();
        await world.AppendAsync(StreamWorld.Events(50, seed: 3));
        await using (await world.RunAsync())
        {
        }

        var lakePath = Path.Combine(world.Root, "lake", "enriched", "engagement");
        var table = await DeltaTable.OpenAsync(lakePath);
        var latest = (await table.GetSnapshotAsync()).Version;
        (await table.WriteFoldAsync(StreamRuntime.CommitsFold, latest, "1;0=5")).Should().BeTrue();
        (await table.ReadFoldAsync(StreamRuntime.CommitsFold)).Should().Be((latest, "1;0=5"));

        var entry = Path.Combine(lakePath, "_delta_log", DeltaLogNamingFor(latest));
        var original = await File.ReadAllTextAsync(entry);
        await File.WriteAllTextAsync(entry, original + "\n"); // one byte more: another commit than the one folded
        (await table.ReadFoldAsync(StreamRuntime.CommitsFold)).Should().BeNull("its commit no longer matches the one it was folded to");
        await File.WriteAllTextAsync(entry, original);

        var file = Path.Combine(lakePath, "_delta_log", "_weft_folds", StreamRuntime.CommitsFold + ".json");
        await File.WriteAllTextAsync(file, "{\"Version\":");
        (await table.ReadFoldAsync(StreamRuntime.CommitsFold)).Should().BeNull("a damaged fold is passed over");
        var badName = () => table.ReadFoldAsync("../escape");
        await badName.Should().ThrowAsync<ArgumentException>();
    }

    /// <summary>Micro-batches of two records, each flushed before the next is read: a stream commit per batch.</summary>
    private static async Task FlushEveryBatchAsync(StreamWorld world)
    {
        await using var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None);
        await using var runtime = await StreamRuntime.CreateAsync(world.Config, host.Source, host.Store, null, new StreamOptions { MaxBatchRecords = 2, MaxWait = TimeSpan.FromMilliseconds(20) });
        int empty = 0;
        while (empty < 3)
        {
            empty = await runtime.StepAsync(CancellationToken.None) == 0 ? empty + 1 : 0;
            await runtime.FlushAsync(CancellationToken.None);
        }
    }

    /// <summary>What the fold must hold: computed here from every commit, independently of the runtime.</summary>
    private static string ExpectedFold(IReadOnlyList<CommitSummary> history)
    {
        var offsets = new SortedDictionary<string, long>(StringComparer.Ordinal);
        long maxEventTime = long.MinValue;
        foreach (var commit in history)
        {
            if (commit.Parameters.TryGetValue("weft.offsets", out var text))
            {
                foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
                {
                    int eq = part.LastIndexOf('=');
                    long offset = long.Parse(part[(eq + 1)..], CultureInfo.InvariantCulture);
                    offsets[part[..eq]] = Math.Max(offset, offsets.GetValueOrDefault(part[..eq], -1));
                }
            }

            if (commit.Parameters.TryGetValue("weft.max_event_time", out var time))
            {
                maxEventTime = Math.Max(maxEventTime, long.Parse(time, CultureInfo.InvariantCulture));
            }
        }

        return $"{maxEventTime.ToString(CultureInfo.InvariantCulture)};{string.Join(',', offsets.Select(o => $"{o.Key}={o.Value.ToString(CultureInfo.InvariantCulture)}"))}";
    }

    private static string DeltaLogNamingFor(long version) => version.ToString("D20", CultureInfo.InvariantCulture) + ".json";

    [GeneratedRegex("=[0-9]+(?=[,\"])")]
    private static partial Regex OffsetValue();
}
