using System.Text.RegularExpressions;
using FluentAssertions;
using Xunit;

namespace Weft.Storage.Tests;

public sealed class DeltaTableFormatterTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(TestTables.Epoch);

    public void Dispose() => _directory.Dispose();

    private string TablePath => _directory.Combine("events");

    [Fact]
    public async Task Ls_prints_the_table_header_totals_and_one_aligned_line_per_file()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        var small = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream", rows: 7);
        var large = TestTables.WriteFile(TablePath, "2026-11-23T11", "batch", rows: 1200);
        var noStats = TestTables.WriteFile(TablePath, "2026-11-23T11", "stream") with { Stats = null };
        await table.CommitAsync(TestTables.Append(small, large, noStats));

        var lines = DeltaTableFormatter.Ls(await table.GetSnapshotAsync());

        lines.Take(5).Should().Equal(
            $"table {TablePath}",
            "version 1 committed 2026-11-23T12:00:00.000Z",
            "schema event_id: string not null, user_id: long not null, event_time: timestamp, embedding: array<float>, bucket: string, path: string",
            "partitioned by bucket, path",
            $"3 files, {small.Size + large.Size + noStats.Size} bytes, 1207+ rows");
        lines[5].Should().MatchRegex("^SIZE  ROWS  MODIFIED +PARTITION +PATH$");
        lines.Skip(6).Should().HaveCount(3);
        var smallLine = lines.Single(l => l.EndsWith(small.Path, StringComparison.Ordinal));
        smallLine.Should().MatchRegex($"^ +{small.Size}  +7  2026-11-23T12:00:00.000Z  bucket=2026-11-23T10/path=stream +{small.Path}$");
        lines.Single(l => l.EndsWith(noStats.Path, StringComparison.Ordinal)).Should().Contain("  -  ");
        lines.Skip(6).Select(l => Regex.Match(l, @"\d{4}-\d\d-\d\dT").Index).Should().AllBeEquivalentTo(lines[5].IndexOf("MODIFIED", StringComparison.Ordinal), "columns are aligned");
        lines.Skip(6).Select(l => l.IndexOf("bucket=", StringComparison.Ordinal)).Should().AllBeEquivalentTo(lines[5].IndexOf("PARTITION", StringComparison.Ordinal));

        DeltaTableFormatter.Ls(await table.GetSnapshotAsync(), PartitionFilter.All.Equal("path", "batch"))[4]
            .Should().Be($"1 file matching path = 'batch', {large.Size} bytes, 1200 rows");
    }

    [Fact]
    public async Task History_and_vacuum_print_one_line_per_commit_and_per_file()
    {
        var table = await TestTables.CreateAsync(TablePath, _time);
        var file = TestTables.WriteFile(TablePath, "2026-11-23T10", "stream", written: TestTables.Epoch.AddDays(-30));
        await table.CommitAsync(TestTables.Append(file));
        await table.CommitAsync(DeltaTransaction.Create("DELETE").Remove(file.Path).Build());

        var history = DeltaTableFormatter.History(await table.GetHistoryAsync());

        history.Should().HaveCount(4);
        history[0].Should().MatchRegex("^VERSION  TIMESTAMP +OPERATION +ADDED  REMOVED  PARAMETERS$");
        history[1].Should().MatchRegex("^      2  2026-11-23T12:00:00.000Z  DELETE +0        1  mode=Append$");
        history[3].Should().Contain("CREATE TABLE").And.EndWith("partitionBy=[\"bucket\",\"path\"]");

        _time.Advance(TimeSpan.FromDays(8));
        var vacuum = DeltaTableFormatter.Vacuum(await table.VacuumAsync(TimeSpan.FromDays(7), dryRun: true));

        vacuum.Should().Equal(
            $"vacuum (dry run) would delete 1 file, {file.Size} bytes; horizon 2026-11-24T12:00:00.000Z (retention 7d), retained versions 2..2",
            "SIZE  PATH",
            $"{file.Size.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(4)}  {file.Path}");
    }
}
