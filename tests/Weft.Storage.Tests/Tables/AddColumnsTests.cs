using System.Collections.Immutable;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet.Tests;
using Xunit;

namespace Weft.Storage.Tests.Tables;

/// <summary>
/// A table opened with <see cref="EventTableOptions.AddColumns"/> and a schema that adds columns (a
/// signal's additive change) gains them in a commit of its own; rows written before read them as null,
/// in Weft and in DuckDB over <c>weft table ls --duckdb</c>'s statement. A column removed or retyped still fails.
/// </summary>
public sealed class AddColumnsTests : IDisposable
{
    private static readonly ImmutableArray<FieldDefinition> Before =
    [
        new("event_id", WeftType.String, Nullable: false),
        new("user_id", WeftType.Int64, Nullable: false),
        new("dwell_ms", WeftType.Int32, Nullable: false),
    ];

    // The new column in the middle (a definition's element order), and dwell_ms now allowed nulls.
    private static readonly ImmutableArray<FieldDefinition> After =
    [
        new("event_id", WeftType.String, Nullable: false),
        new("board_id", WeftType.Int64, Nullable: false),
        new("user_id", WeftType.Int64, Nullable: false),
        new("dwell_ms", WeftType.Int32),
        new("tags", WeftType.ListOf(ScalarKind.String)),
    ];

    private static readonly EventTableOptions Adding = new() { AddColumns = true };

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Added_columns_are_committed_once_and_read_as_null_for_rows_written_before()
    {
        var path = _directory.Combine("t");
        var first = await EventTable.OpenOrCreateAsync(path, Before, ["bucket"]);
        await first.AppendAsync(new EventBatch(Before, [new StringColumn(["a", "b"]), new PrimitiveColumn<long>(WeftType.Int64, [1, 2]), new PrimitiveColumn<int>(WeftType.Int32, [10, 20])]),
            new Dictionary<string, string?> { ["bucket"] = "x" });

        var refused = async () => await EventTable.OpenOrCreateAsync(path, After, ["bucket"]);
        (await refused.Should().ThrowAsync<Weft.Storage.SchemaMismatchException>("without AddColumns a table keeps its schema")).Which.Message.Should().Contain("board_id");

        var second = await EventTable.OpenOrCreateAsync(path, After, ["bucket"], Adding);
        var history = await second.Log.GetHistoryAsync();
        history.Should().HaveCount(3);
        history.Select(c => c.Operation).Should().Contain("ADD COLUMNS");
        second.Schema.Select(f => (f.Name, f.Nullable)).Should().Equal(
            ("event_id", false), ("user_id", false), ("dwell_ms", true), ("board_id", true), ("tags", true));

        var third = await EventTable.OpenOrCreateAsync(path, After, ["bucket"], Adding);
        (await third.Log.GetHistoryAsync()).Should().HaveCount(3, "a table that has the columns already gains nothing");

        await third.AppendAsync(new EventBatch(After,
            [new StringColumn(["c"]), new PrimitiveColumn<long>(WeftType.Int64, [7]), new PrimitiveColumn<long>(WeftType.Int64, [3]), new PrimitiveColumn<int>(WeftType.Int32, [0], [true]), new ListColumn<string?>(WeftType.ListOf(ScalarKind.String), [new string?[] { "p", "q" }])]),
            new Dictionary<string, string?> { ["bucket"] = "y" });

        string[] columns = ["event_id", "user_id", "dwell_ms", "board_id", "tags"];
        string[] expected =
        [
            "event_id=\"a\"|user_id=1|dwell_ms=10|board_id=null|tags=null|",
            "event_id=\"b\"|user_id=2|dwell_ms=20|board_id=null|tags=null|",
            "event_id=\"c\"|user_id=3|dwell_ms=null|board_id=7|tags=[\"p\",\"q\"]|",
        ];
        var reopened = await EventTable.OpenAsync(path);
        EventData.Rows(await EventData.ReadAllAsync(reopened.ReadAsync(columns)), columns).Should().Equal(expected);

        var duck = (await DuckDb.RunAsync(Weft.Storage.DeltaTableFormatter.DuckDbQuery(await reopened.Log.GetSnapshotAsync()).TrimEnd(';')
            .Replace("SELECT *", "SELECT event_id, user_id, dwell_ms, board_id, tags", StringComparison.Ordinal) + " ORDER BY event_id"))[0];
        static string V(System.Text.Json.JsonElement e) => e.ValueKind == System.Text.Json.JsonValueKind.Null ? "null" : e.ToString();
        duck.Rows.Select(r => string.Join('|', r.Select(V))).Should().Equal("a|1|10|null|null", "b|2|20|null|null", "c|3|null|7|[\"p\",\"q\"]");
    }

    /// <summary>
    /// A writer that opened the table before another added columns (a stream still running the
    /// earlier definition while a batch run of the new one adds a column) goes on committing: its files
    /// lack the column, which reads as null. Its commit failed on the metadata change, then on every
    /// flush after, stopping the stream.
    /// </summary>
    [Fact]
    public async Task A_writer_opened_before_columns_were_added_goes_on_committing()
    {
        var path = _directory.Combine("t");
        var earlier = await EventTable.OpenOrCreateAsync(path, Before, ["bucket"], Adding);
        var later = await EventTable.OpenOrCreateAsync(path, After, ["bucket"], Adding);
        await later.AppendAsync(new EventBatch(After,
            [new StringColumn(["n"]), new PrimitiveColumn<long>(WeftType.Int64, [9]), new PrimitiveColumn<long>(WeftType.Int64, [1]), new PrimitiveColumn<int>(WeftType.Int32, [5]), new ListColumn<string?>(WeftType.ListOf(ScalarKind.String), [null])]),
            new Dictionary<string, string?> { ["bucket"] = "x" });

        await earlier.AppendAsync(new EventBatch(Before, [new StringColumn(["o"]), new PrimitiveColumn<long>(WeftType.Int64, [2]), new PrimitiveColumn<int>(WeftType.Int32, [7])]),
            new Dictionary<string, string?> { ["bucket"] = "x" });

        // Opened again under the earlier schema (a rollback, a host not yet deployed): the table keeps
        // its columns, and this writer's rows hold nulls in those it lacks.
        var rolledBack = await EventTable.OpenOrCreateAsync(path, Before, ["bucket"], Adding);
        rolledBack.Schema.Select(f => f.Name).Should().Equal("event_id", "user_id", "dwell_ms", "board_id", "tags");
        await rolledBack.AppendAsync(new EventBatch(Before, [new StringColumn(["r"]), new PrimitiveColumn<long>(WeftType.Int64, [3]), new PrimitiveColumn<int>(WeftType.Int32, [8])]),
            new Dictionary<string, string?> { ["bucket"] = "x" });
        var extra = async () => await rolledBack.AppendAsync(new EventBatch([.. Before, new FieldDefinition("nope", WeftType.Int64)],
            [new StringColumn(["q"]), new PrimitiveColumn<long>(WeftType.Int64, [4]), new PrimitiveColumn<int>(WeftType.Int32, [9]), new PrimitiveColumn<long>(WeftType.Int64, [1])]), new Dictionary<string, string?> { ["bucket"] = "x" });
        (await extra.Should().ThrowAsync<SchemaMismatchException>("a column the table lacks is not dropped silently")).Which.Column.Should().Be("nope");

        string[] columns = ["event_id", "user_id", "dwell_ms", "board_id"];
        EventData.Rows(await EventData.ReadAllAsync((await EventTable.OpenAsync(path)).ReadAsync(columns)), columns).Should().Equal(
            "event_id=\"n\"|user_id=1|dwell_ms=5|board_id=9|",
            "event_id=\"o\"|user_id=2|dwell_ms=7|board_id=null|",
            "event_id=\"r\"|user_id=3|dwell_ms=8|board_id=null|");
    }

    [Fact]
    public async Task A_column_removed_or_retyped_is_not_added_around_and_still_fails()
    {
        var path = _directory.Combine("t");
        await EventTable.OpenOrCreateAsync(path, Before, []);

        ImmutableArray<FieldDefinition> removed = [Before[0], Before[1], new("board_id", WeftType.Int64)];
        ImmutableArray<FieldDefinition> retyped = [Before[0], Before[1], new("dwell_ms", WeftType.Int64, Nullable: false), new("board_id", WeftType.Int64)];
        foreach (var (schema, column) in new[] { (removed, "dwell_ms"), (retyped, "dwell_ms") })
        {
            var open = async () => await EventTable.OpenOrCreateAsync(path, schema, [], Adding);
            (await open.Should().ThrowAsync<Weft.Storage.SchemaMismatchException>()).Which.Column.Should().Be(column);
        }

        (await (await EventTable.OpenAsync(path)).Log.GetHistoryAsync()).Should().HaveCount(1, "nothing was committed");
    }

    /// <summary>
    /// Another engine's table (here a <c>short</c> column, read through a conversion) gets no added
    /// columns, and the refusal says so: before, it read like a removed or retyped column.
    /// </summary>
    [Theory]
    [InlineData("{\"name\":\"qty\",\"type\":\"short\",\"nullable\":true,\"metadata\":{}}", "{}", "'qty' is short")]
    [InlineData("{\"name\":\"qty\",\"type\":\"integer\",\"nullable\":true,\"metadata\":{}}", "{\"delta.columnMapping.mode\":\"none\"}", "delta.columnMapping.mode (none)")]
    public async Task A_table_in_another_engines_layout_gets_no_columns_and_the_refusal_says_why(string qty, string configuration, string reason)
    {
        var path = _directory.Combine("warehouse");
        var schema = "{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}," + qty + "]}";
        await Weft.Storage.Tests.TestTables.WriteRawLogAsync(path, 0,
            new System.Text.Json.Nodes.JsonObject { ["protocol"] = new System.Text.Json.Nodes.JsonObject { ["minReaderVersion"] = 1, ["minWriterVersion"] = 2 } },
            new System.Text.Json.Nodes.JsonObject
            {
                ["metaData"] = new System.Text.Json.Nodes.JsonObject
                {
                    ["id"] = "b6f1f7a4-2c1e-4d55-9d0e-6a4f0c1e2b3a",
                    ["format"] = new System.Text.Json.Nodes.JsonObject { ["provider"] = "parquet", ["options"] = new System.Text.Json.Nodes.JsonObject() },
                    ["schemaString"] = schema,
                    ["partitionColumns"] = new System.Text.Json.Nodes.JsonArray(),
                    ["configuration"] = System.Text.Json.Nodes.JsonNode.Parse(configuration),
                    ["createdTime"] = 0,
                },
            });

        ImmutableArray<FieldDefinition> wider = [new("id", WeftType.Int64), new("qty", WeftType.Int32), new("board_id", WeftType.Int64)];
        var open = async () => await EventTable.OpenOrCreateAsync(path, wider, [], Adding);
        (await open.Should().ThrowAsync<Weft.Storage.SchemaMismatchException>()).Which.Message.Should().Contain("only to a table in its own layout").And.Contain(reason);
        Weft.Storage.Tests.TestTables.LogFiles(path).Should().Equal(["00000000000000000000.json"], "nothing was committed");

        var plain = async () => await EventTable.OpenOrCreateAsync(path, wider, []);
        (await plain.Should().ThrowAsync<Weft.Storage.SchemaMismatchException>()).Which.Message.Should().NotContain("own layout", "a writer not asked to add columns is refused for the mismatch alone");
    }
}

/// <summary>
/// A table is created only in a new or empty folder, and a vacuum keeps out of a table nested in
/// another: both deleted files no version of the table referenced (a lake pointed at a data folder,
/// a table inside a table's folder), the first by the stream's daily vacuum with no command run.
/// </summary>
public sealed class TableFolderTests : IDisposable
{
    private static readonly ImmutableArray<FieldDefinition> Schema = [new("id", WeftType.Int64, Nullable: false)];

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task A_table_is_not_created_in_a_folder_holding_files()
    {
        var path = _directory.Combine("data");
        Directory.CreateDirectory(Path.Combine(path, "2025"));
        await File.WriteAllTextAsync(Path.Combine(path, "2025", "precious.parquet"), "data");
        await File.WriteAllTextAsync(Path.Combine(path, ".DS_Store"), "");

        var create = async () => await EventTable.OpenOrCreateAsync(path, Schema, []);

        (await create.Should().ThrowAsync<DeltaLogException>()).Which.Message.Should().Contain("holds files but no Delta table (2025)").And.Contain("new or empty folder");
        Directory.Exists(Path.Combine(path, "_delta_log")).Should().BeFalse();
        File.Exists(Path.Combine(path, "2025", "precious.parquet")).Should().BeTrue();

        // Hidden entries alone ('.' or '_' first, as Delta's own) are an empty folder.
        var hidden = _directory.Combine("hidden");
        Directory.CreateDirectory(Path.Combine(hidden, "_weft_staging"));
        await File.WriteAllTextAsync(Path.Combine(hidden, ".keep"), "");
        (await EventTable.OpenOrCreateAsync(hidden, Schema, [])).Schema.Should().Equal(Schema);
    }

    [Fact]
    public async Task A_vacuum_leaves_a_table_nested_in_the_folder_alone()
    {
        var outer = await EventTable.OpenOrCreateAsync(_directory.Combine("outer"), Schema, []);
        var inner = await EventTable.OpenOrCreateAsync(Path.Combine(outer.Path, "inner"), Schema, []);
        await inner.AppendAsync(new EventBatch(Schema, [new PrimitiveColumn<long>(WeftType.Int64, [1, 2])]), new Dictionary<string, string?>());
        await File.WriteAllTextAsync(Path.Combine(outer.Path, "stray.parquet"), "not referenced");
        File.SetLastWriteTimeUtc(Path.Combine(outer.Path, "stray.parquet"), DateTime.UtcNow.AddDays(-30));
        foreach (var file in Directory.EnumerateFiles(inner.Path, "*.parquet", SearchOption.AllDirectories))
        {
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddDays(-30));
        }

        var vacuum = await outer.Log.VacuumAsync(TimeSpan.FromDays(7));

        vacuum.Files.Select(f => f.Path).Should().Equal("stray.parquet");
        EventData.Rows(await EventData.ReadAllAsync((await EventTable.OpenAsync(inner.Path)).ReadAsync(["id"])), ["id"]).Should().Equal("id=1|", "id=2|");
    }
}
