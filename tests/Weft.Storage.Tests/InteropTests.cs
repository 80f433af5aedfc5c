using System.Text;
using System.Text.Json;
using FluentAssertions;
using Xunit;

namespace Weft.Storage.Tests;

/// <summary>
/// Format interop: Weft reads a log Spark wrote, and every log line Weft writes has the shape the
/// protocol prescribes.
/// </summary>
public sealed class InteropTests : IDisposable
{
    private static readonly HashSet<string> KnownActions = ["commitInfo", "protocol", "metaData", "add", "remove"];

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Weft_reads_and_appends_to_a_table_whose_log_spark_wrote()
    {
        var tablePath = _directory.Combine("spark");
        var source = Path.Combine(AppContext.BaseDirectory, "TestData", "spark-partitioned", "_delta_log");
        Directory.CreateDirectory(Path.Combine(tablePath, "_delta_log"));
        foreach (var file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(tablePath, "_delta_log", Path.GetFileName(file)));
        }

        var table = await DeltaTable.OpenAsync(tablePath);
        var snapshot = await table.GetSnapshotAsync();

        snapshot.Version.Should().Be(0);
        snapshot.TableId.Should().Be("e5ec0a0b-186b-4af8-8b64-f5eb808981e1");
        snapshot.Timestamp.Should().Be(DateTimeOffset.FromUnixTimeMilliseconds(1653946642277));
        snapshot.Schema.Fields.Select(f => (f.Name, f.Type)).Should().Equal(
            ("name", DeltaDataType.String), ("surname", DeltaDataType.String), ("age", DeltaDataType.Integer), ("col1", DeltaDataType.String), ("col2", DeltaDataType.String));
        snapshot.PartitionColumns.Should().Equal("col1", "col2");
        var sparkFile = snapshot.Files(PartitionFilter.All.Equal("col1", "val1")).Single();
        sparkFile.Path.Should().Be("col1=val1/col2=val2/part-00000-bda8015b-74e7-4a29-afe7-9d6c77f3a7ae.c000.snappy.parquet");
        sparkFile.PartitionValues.Should().Equal(new Dictionary<string, string?> { ["col1"] = "val1", ["col2"] = "val2" });
        sparkFile.Size.Should().Be(873);
        var history = (await table.GetHistoryAsync()).Single();
        history.Operation.Should().Be("WRITE");
        history.Parameters.Should().Contain("partitionBy", "[\"col1\",\"col2\"]");

        var values = new Dictionary<string, string?> { ["col1"] = "val1", ["col2"] = "other value" };
        var relative = DeltaPaths.NewDataFilePath(snapshot.PartitionColumns, values);
        var result = await table.CommitAsync(DeltaTransaction.Create("WRITE").WithWriterSchema(snapshot.Schema)
            .Add(new AddFile(relative, values, 100, DateTimeOffset.UnixEpoch.AddYears(56))).Build());

        result.Version.Should().Be(1);
        (await (await DeltaTable.OpenAsync(tablePath)).GetSnapshotAsync()).Files().Should().HaveCount(2);
        (await File.ReadAllTextAsync(Path.Combine(tablePath, "_delta_log", DeltaLogNaming.CommitFileName(1))))
            .Should().Contain("\"path\":\"col1=val1/col2=other%20value/part-");
    }

    [Fact]
    public async Task Every_log_line_weft_writes_is_one_protocol_action_with_its_required_fields()
    {
        var tablePath = _directory.Combine("weft");
        var table = await TestTables.CreateAsync(tablePath);
        var odd = TestTables.WriteFile(tablePath, "2026-11-23 10:00", "str/eam");
        await table.CommitAsync(TestTables.Append(odd, TestTables.WriteFile(tablePath, "2026-11-23T11", "batch")));
        await table.CommitAsync(DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema)
            .ReplacePartitions(PartitionFilter.All.Equal("bucket", "2026-11-23 10:00"), [TestTables.WriteFile(tablePath, "2026-11-23 10:00", "str/eam")]).Build());

        odd.Path.Should().StartWith("bucket=2026-11-23 10%3A00/path=str%2Feam/");
        var sawRemove = false;
        foreach (var name in TestTables.LogFiles(tablePath))
        {
            var text = await File.ReadAllTextAsync(Path.Combine(tablePath, "_delta_log", name), Encoding.UTF8);
            text.Should().EndWith("\n");
            var seen = new List<string>();
            foreach (var line in text[..^1].Split('\n'))
            {
                using var document = JsonDocument.Parse(line);
                var properties = document.RootElement.EnumerateObject().ToList();
                properties.Should().ContainSingle($"each line of {name} holds exactly one action");
                var (kind, body) = (properties[0].Name, properties[0].Value);
                KnownActions.Should().Contain(kind);
                seen.Add(kind);
                switch (kind)
                {
                    case "commitInfo":
                        body.GetProperty("timestamp").ValueKind.Should().Be(JsonValueKind.Number);
                        body.GetProperty("operation").ValueKind.Should().Be(JsonValueKind.String);
                        body.GetProperty("operationParameters").EnumerateObject().Should().OnlyContain(p => p.Value.ValueKind == JsonValueKind.String);
                        break;
                    case "protocol":
                        body.GetProperty("minReaderVersion").GetInt32().Should().Be(1);
                        body.GetProperty("minWriterVersion").GetInt32().Should().Be(2);
                        break;
                    case "metaData":
                        Guid.TryParse(body.GetProperty("id").GetString(), out _).Should().BeTrue();
                        body.GetProperty("format").GetProperty("provider").GetString().Should().Be("parquet");
                        body.GetProperty("format").GetProperty("options").EnumerateObject().Should().BeEmpty();
                        DeltaSchema.Parse(body.GetProperty("schemaString").GetString()!).Should().Be(TestTables.Schema);
                        body.GetProperty("partitionColumns").EnumerateArray().Select(e => e.GetString()).Should().Equal("bucket", "path");
                        body.GetProperty("configuration").ValueKind.Should().Be(JsonValueKind.Object);
                        body.GetProperty("createdTime").ValueKind.Should().Be(JsonValueKind.Number);
                        break;
                    case "add":
                    case "remove":
                        var path = body.GetProperty("path").GetString()!;
                        Uri.IsWellFormedUriString(path, UriKind.Relative).Should().BeTrue($"'{path}' is a relative URI reference");
                        var values = body.GetProperty("partitionValues").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
                        values.Keys.Should().BeEquivalentTo("bucket", "path");
                        DeltaPaths.FromLogPath(path).Should().StartWith(DeltaPaths.PartitionDirectory(TestTables.PartitionColumns, values) + "/");
                        body.GetProperty("size").ValueKind.Should().Be(JsonValueKind.Number);
                        body.GetProperty("dataChange").ValueKind.Should().Be(JsonValueKind.True);
                        if (kind == "add")
                        {
                            body.GetProperty("modificationTime").ValueKind.Should().Be(JsonValueKind.Number);
                            using var stats = JsonDocument.Parse(body.GetProperty("stats").GetString()!);
                            stats.RootElement.GetProperty("numRecords").GetInt64().Should().Be(10);
                            stats.RootElement.GetProperty("minValues").ValueKind.Should().Be(JsonValueKind.Object);
                        }
                        else
                        {
                            sawRemove = true;
                            body.GetProperty("deletionTimestamp").ValueKind.Should().Be(JsonValueKind.Number);
                        }

                        break;
                }
            }

            seen[0].Should().Be("commitInfo", "Weft writes commitInfo first");
            if (name == DeltaLogNaming.CommitFileName(0))
            {
                seen.Should().Contain(["protocol", "metaData"]);
            }
        }

        sawRemove.Should().BeTrue();
    }
}
