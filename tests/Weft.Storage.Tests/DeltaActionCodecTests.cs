using System.Text;
using System.Text.Json;
using FluentAssertions;
using FsCheck;
using FsCheck.Xunit;
using Xunit;

namespace Weft.Storage.Tests;

public sealed class DeltaActionCodecTests
{
    [Fact]
    public void Every_action_round_trips_with_the_protocol_field_names()
    {
        var actions = new List<DeltaAction>
        {
            new CommitInfoAction
            {
                Timestamp = 1700000000123,
                Operation = "WRITE",
                OperationParameters = new Dictionary<string, string> { ["mode"] = "Append" },
                ReadVersion = 4,
                IsBlindAppend = true,
                EngineInfo = "Weft.Storage/1.0",
                TxnId = "t-1",
            },
            new ProtocolAction(1, 2),
            new MetadataAction("af23c9d7-fff1-4a5a-a2c8-55c59bd782aa", FormatSpec.Parquet, TestTables.Schema.ToSchemaString(), ["bucket", "path"],
                new Dictionary<string, string> { ["delta.appendOnly"] = "false" }, 1700000000000),
            new RemoveAction("bucket=2026-11-23T10/path=stream/part-1.parquet", 1700000000123, true, true,
                new Dictionary<string, string?> { ["bucket"] = "2026-11-23T10", ["path"] = "stream" }, 42),
            new AddAction("bucket=2026-11-23T10/path=batch/part-2.parquet", new Dictionary<string, string?> { ["bucket"] = "2026-11-23T10", ["path"] = null },
                841454, 1512909768000, true, "{\"numRecords\":1}"),
        };

        var bytes = DeltaActionCodec.Serialize(actions);
        var text = Encoding.UTF8.GetString(bytes);
        var lines = text.Split('\n');

        lines.Should().HaveCount(6, "five actions, each line ending in a newline");
        lines[^1].Should().BeEmpty();
        lines[0].Should().StartWith("{\"commitInfo\":{\"timestamp\":1700000000123,\"operation\":\"WRITE\",\"operationParameters\":{\"mode\":\"Append\"},\"readVersion\":4,\"isBlindAppend\":true");
        lines[1].Should().Be("{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}");
        lines[2].Should().StartWith("{\"metaData\":{\"id\":\"af23c9d7-fff1-4a5a-a2c8-55c59bd782aa\",\"format\":{\"provider\":\"parquet\",\"options\":{}},\"schemaString\":\"{\\\"type\\\":\\\"struct\\\"");
        lines[2].Should().Contain("\"partitionColumns\":[\"bucket\",\"path\"],\"configuration\":{\"delta.appendOnly\":\"false\"},\"createdTime\":1700000000000}}");
        lines[3].Should().Be("{\"remove\":{\"path\":\"bucket=2026-11-23T10/path=stream/part-1.parquet\",\"deletionTimestamp\":1700000000123,\"dataChange\":true,\"extendedFileMetadata\":true,\"partitionValues\":{\"bucket\":\"2026-11-23T10\",\"path\":\"stream\"},\"size\":42}}");
        lines[4].Should().Be("{\"add\":{\"path\":\"bucket=2026-11-23T10/path=batch/part-2.parquet\",\"partitionValues\":{\"bucket\":\"2026-11-23T10\",\"path\":null},\"size\":841454,\"modificationTime\":1512909768000,\"dataChange\":true,\"stats\":\"{\\\"numRecords\\\":1}\"}}");

        var parsed = DeltaActionCodec.Parse(bytes);
        DeltaActionCodec.Serialize(parsed).Should().Equal(bytes, "parsing and re-serialising changes nothing");
        parsed.Select(a => a.GetType()).Should().Equal(actions.Select(a => a.GetType()));
        ((AddAction)parsed[4]).PartitionValues["path"].Should().BeNull();
        ((MetadataAction)parsed[2]).PartitionColumns.Should().Equal("bucket", "path");
    }

    [Fact]
    public void Unknown_actions_and_fields_are_ignored_and_foreign_commit_info_and_txn_are_kept()
    {
        var log = """
            {"commitInfo":{"timestamp":5,"operation":"MERGE","operationParameters":{"predicate":"x","matched":[1,2]},"operationMetrics":{"numFiles":"1"}}}
            {"txn":{"appId":"3ba13872","version":364475}}
            {"add":{"path":"a.parquet","partitionValues":{},"size":1,"modificationTime":2,"dataChange":true,"futureField":{"x":1},"tags":{"k":"v"}}}
            {"domainMetadata":{"domain":"d","configuration":"{}","removed":false}}
            """;

        var actions = DeltaActionCodec.Parse(Encoding.UTF8.GetBytes(log));

        actions.Should().HaveCount(3, "domainMetadata is ignored; txn is kept, for checkpoints to carry forward");
        var info = actions[0].Should().BeOfType<CommitInfoAction>().Subject;
        info.OperationParameters!["predicate"].Should().Be("x");
        info.OperationParameters["matched"].Should().Be("[1,2]", "a non-string parameter keeps its JSON text");
        info.Extra.Should().ContainKey("operationMetrics");
        actions[1].Should().Be(new TxnAction("3ba13872", 364475));
        actions[2].Should().BeOfType<AddAction>().Which.Tags!["k"].Should().Be("v");
    }

    [Theory]
    [InlineData("{\"add\":{\"path\":\"a\",\"partitionValues\":{},\"size\":1,\"modificationTime\":2,\"dataChange\":true}}\n{\"add\":", 2)]
    [InlineData("{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}\n[1,2]", 2)]
    [InlineData("{\"add\":{\"partitionValues\":{},\"size\":1,\"modificationTime\":2,\"dataChange\":true}}", 1)]
    [InlineData("{\"add\":{\"path\":\"a\",\"partitionValues\":{},\"size\":\"big\",\"modificationTime\":2,\"dataChange\":true}}", 1)]
    [InlineData("{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}} {\"add\":{}}", 1)]
    [InlineData("\n\n{\"metaData\":{\"id\":\"x\"}}", 3)]
    public void Malformed_lines_are_reported_with_their_line_number(string content, int line)
    {
        var act = () => DeltaActionCodec.Parse(Encoding.UTF8.GetBytes(content));

        act.Should().Throw<FormatException>().WithMessage($"line {line}, byte *: *").And.Message.Should().NotContain("LineNumber");
    }

    [Property(MaxTest = 200)]
    public bool Any_add_action_round_trips(NonNull<string> path, string?[] keys, string?[] values, PositiveInt size, long time, bool dataChange, string? stats)
    {
        var partitionValues = new Dictionary<string, string?>(StringComparer.Ordinal);
        for (var i = 0; i < keys.Length; i++)
        {
            if (keys[i] is { } key)
            {
                partitionValues[key] = i < values.Length ? values[i] : null;
            }
        }

        var add = new AddAction(path.Get, partitionValues, size.Get, time, dataChange, stats);
        var bytes = DeltaActionCodec.Serialize([add]);
        var back = (AddAction)DeltaActionCodec.Parse(bytes).Single();
        return back.Path == add.Path
               && back.Size == add.Size
               && back.ModificationTime == add.ModificationTime
               && back.DataChange == add.DataChange
               && back.Stats == add.Stats
               && back.PartitionValues.Count == add.PartitionValues.Count
               && add.PartitionValues.All(p => back.PartitionValues.TryGetValue(p.Key, out var v) && v == p.Value)
               && bytes.Count(b => b == (byte)'\n') == 1;
    }

    [Fact]
    public void A_log_line_with_a_raw_newline_in_a_value_is_impossible()
    {
        var add = new AddAction("a\nb.parquet", new Dictionary<string, string?> { ["p"] = "line1\nline2" }, 1, 2, true, "{\n}");

        var text = Encoding.UTF8.GetString(DeltaActionCodec.Serialize([add]));

        text.TrimEnd('\n').Should().NotContain("\n");
        using var document = JsonDocument.Parse(text);
        document.RootElement.GetProperty("add").GetProperty("path").GetString().Should().Be("a\nb.parquet");
    }
}
