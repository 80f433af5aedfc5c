using FluentAssertions;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>What an operator reads when a scores or outcomes file is not as expected.</summary>
public sealed class InputMessageTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "weft-input-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("example_id,score\n")]
    [InlineData("")]
    public async Task Scores_with_a_header_and_no_rows_say_the_file_has_no_rows(string text)
    {
        string csv = Path.Combine(_dir, "control.csv");
        await File.WriteAllTextAsync(csv, text);

        var read = () => ReplayScores.ReadAsync(csv, "example_id", "score");

        (await read.Should().ThrowAsync<MigrationInputException>()).Which.Message.Should().Contain("control.csv").And.Contain("hold no rows").And.NotContain("no column");
    }

    [Fact]
    public async Task Outcomes_with_a_header_and_no_rows_say_the_file_has_no_rows()
    {
        string csv = Path.Combine(_dir, "clicks.csv");
        await File.WriteAllTextAsync(csv, "user_id,clicked\n");

        var read = () => OnlineOutcome.ReadAsync(csv, "user_id", "clicked");

        (await read.Should().ThrowAsync<MigrationInputException>()).Which.Message.Should().Contain("hold no rows").And.NotContain("no column");
    }

    [Fact]
    public async Task An_outcome_row_without_a_user_id_is_named_by_its_file_line()
    {
        string csv = Path.Combine(_dir, "clicks.csv");
        await File.WriteAllTextAsync(csv, "user_id,clicked\n1,1\n,0\n");
        string jsonl = Path.Combine(_dir, "clicks.jsonl");
        await File.WriteAllTextAsync(jsonl, "{\"user_id\":1,\"clicked\":1}\n{\"clicked\":0}\n");

        var fromCsv = () => OnlineOutcome.ReadAsync(csv, "user_id", "clicked");
        var fromJson = () => OnlineOutcome.ReadAsync(jsonl, "user_id", "clicked");

        (await fromCsv.Should().ThrowAsync<MigrationInputException>()).Which.Message.Should().Contain("clicks.csv:3: missing 'user_id'");
        (await fromJson.Should().ThrowAsync<MigrationInputException>()).Which.Message.Should().Contain("clicks.jsonl:2: missing 'user_id'");
    }
}
