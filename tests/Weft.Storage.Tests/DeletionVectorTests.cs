using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FluentAssertions;
using Weft.Parquet;
using Weft.Parquet.Tests;
using Weft.Storage.Tests.Tables;
using Xunit;

namespace Weft.Storage.Tests;

/// <summary>
/// Tables another engine wrote with deletion vectors (Databricks and Delta Lake 3 turn them on for new
/// tables): a DELETE leaves the data file and records the rows it removed in a Roaring bitmap, inline in
/// the log or in a file beside the data. The vectors here are written by CRoaring (roaring-wasm, through
/// tests/interop/deletion-vector.mjs), the data files by DuckDB, and the log as JSON by the test; what
/// Weft reads must be what DuckDB reads from the files with those row numbers left out.
/// </summary>
public sealed class DeletionVectorTests : IDisposable
{
    private const string Schema = """{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},{"name":"user_id","type":"long","nullable":true,"metadata":{}},{"name":"name","type":"string","nullable":true,"metadata":{}}]}""";
    private static readonly string[] Columns = ["id", "user_id", "name"];

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    public static TheoryData<int> Seeds() => [.. Enumerable.Range(1, 6)];

    /// <summary>PROTOCOL.md's "JSON Example 1": the random prefix is a folder, the UUID names the file.</summary>
    [Fact]
    public void The_protocols_relative_path_example_resolves_to_its_file()
    {
        var vector = new DeletionVectorDescriptor("u", "ab^-aqEH.-t@S}K{vb[*k^", 40, 6, Offset: 4);

        DeletionVectorReader.FilePath("/mytable", vector).Should().Be("/mytable/ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin");
        vector.UniqueId.Should().Be("uab^-aqEH.-t@S}K{vb[*k^@4");
    }

    /// <summary>
    /// An inline vector delta-spark wrote for a DELETE of rows 1, 3 and 5 (38 bytes, padded to 40 for
    /// Z85), as a public interop fixture records it with delta-spark 3.2.1 reading it back.
    /// </summary>
    [Fact]
    public async Task An_inline_vector_delta_spark_wrote_deletes_the_rows_it_read_back()
    {
        var vector = new DeletionVectorDescriptor("i", "^Bg9^0rr910000000000iXQKl0rr91000625c8Xg0rri41POJ5", 38, 3);

        var rows = await DeletionVectorReader.ReadAsync(_directory.Path, vector, fileRows: 10, CancellationToken.None);

        Enumerable.Range(0, 10).Where(r => rows.Contains(r)).Should().Equal(1, 3, 5);
        rows.CountIn(0, 10).Should().Be(3);
        rows.CountIn(2, 3).Should().Be(1); // row 3 of rows 2, 3, 4
    }

    /// <summary>
    /// PROTOCOL.md's "JSON Example 3" is the native layout written big-endian: delta-spark reads the
    /// magic number little-endian and refuses it, and so does Weft, naming the number it found, rather
    /// than guess at a byte order no writer uses.
    /// </summary>
    [Fact]
    public async Task The_protocols_inline_example_is_refused_as_delta_spark_refuses_it()
    {
        var vector = new DeletionVectorDescriptor("i", "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L", 40, 6);

        var read = () => DeletionVectorReader.ReadAsync(_directory.Path, vector, fileRows: 40, CancellationToken.None);

        (await read.Should().ThrowAsync<FormatException>()).WithMessage("*magic number -791463580 is neither the portable (1681511377) nor the native (1681511376) format*");
    }

    /// <summary>
    /// Random row sets (sparse, dense, in runs, across several 65,536-row containers, so that CRoaring
    /// writes array, bitset and run containers and the offset header) written as a vector file and inline:
    /// the rows Weft decodes are exactly the rows written.
    /// </summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Vectors_CRoaring_writes_decode_to_the_rows_it_was_given(int seed)
    {
        var random = new Random(seed);
        const int fileRows = 300_000;
        var sets = Enumerable.Range(0, 4).Select(_ => RandomRows(random, fileRows)).ToList();
        var file = _directory.Combine($"vectors{seed}.bin");
        var stored = await WriteVectorFileAsync(file, sets, runs: seed % 2 == 0);
        var inline = await InlineVectorsAsync(sets, runs: seed % 2 == 1);

        for (int i = 0; i < sets.Count; i++)
        {
            var expected = sets[i].ToHashSet();
            foreach (var vector in new[] { stored[i] with { StorageType = "p", PathOrInlineDv = "file://" + file }, inline[i] })
            {
                var rows = await DeletionVectorReader.ReadAsync(_directory.Path, vector, fileRows, CancellationToken.None);
                rows.Count.Should().Be(expected.Count);
                var wrong = Enumerable.Range(0, fileRows).Where(r => rows.Contains(r) != expected.Contains(r)).Take(5).ToList();
                wrong.Should().BeEmpty($"seed {seed}, set {i} ({expected.Count} rows), storage '{vector.StorageType}'");
                int from = random.Next(fileRows), count = random.Next(fileRows - from);
                rows.CountIn(from, count).Should().Be(expected.Count(r => r >= from && r < from + count));
            }
        }
    }

    /// <summary>
    /// Three DuckDB files of several row groups: one with a vector in a file under a random-prefix folder,
    /// one with an inline vector, one without. A second DELETE then replaces the first file's vector
    /// (remove with the old vector, add with the new) in a file at the table's root. Every version, with
    /// and without a range on id, reads as DuckDB reads the files minus the deleted row numbers.
    /// </summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task A_table_with_deletion_vectors_reads_as_DuckDB_reads_its_files_without_the_deleted_rows(int seed)
    {
        var random = new Random(seed);
        var path = _directory.Combine($"t{seed}");
        var sizes = new[] { random.Next(4_500, 7_000), random.Next(2_500, 6_000), random.Next(3_000, 5_000) };
        var files = await WriteDataFilesAsync(path, sizes);
        (await RowGroupsAsync(Path.Combine(path, files[0]))).Should().BeGreaterThan(1, "the vector's rows must span row groups");

        var firstDelete = RandomRows(random, sizes[0]);
        var secondDelete = firstDelete.Concat(RandomRows(random, sizes[0])).Distinct().ToList();
        var inlineDelete = RandomRows(random, sizes[1]);
        var uuid1 = Guid.NewGuid();
        var prefix = "x" + random.Next(10);
        Directory.CreateDirectory(Path.Combine(path, prefix));
        var dv1 = (await WriteVectorFileAsync(Path.Combine(path, prefix, $"deletion_vector_{uuid1:D}.bin"), [firstDelete], runs: false))[0]
            with { StorageType = "u", PathOrInlineDv = prefix + await Z85Async(uuid1) };
        var dvInline = (await InlineVectorsAsync([inlineDelete], runs: true))[0];
        var uuid2 = Guid.NewGuid();
        var dv2 = (await WriteVectorFileAsync(Path.Combine(path, $"deletion_vector_{uuid2:D}.bin"), [[5], secondDelete], runs: true))[1]
            with { StorageType = "u", PathOrInlineDv = await Z85Async(uuid2) };

        await TestTables.WriteRawLogAsync(path, 0, Protocol(), Metadata(), Add(path, files[0], sizes[0], dv1), Add(path, files[1], sizes[1], dvInline), Add(path, files[2], sizes[2], null));
        await TestTables.WriteRawLogAsync(path, 1, Remove(files[0], dv1), Add(path, files[0], sizes[0], dv2));

        var table = await EventTable.OpenAsync(path);
        var deletedAt = new Dictionary<long, List<int>[]>
        {
            [0] = [firstDelete, inlineDelete, []],
            [1] = [secondDelete, inlineDelete, []],
        };
        foreach (var (version, deleted) in deletedAt)
        {
            long low = random.Next(0, 3_000), high = low + random.Next(500, 4_000);
            var rows = EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync(version: version)), Columns);
            rows.Should().Equal(await DuckDbRowsAsync(path, files, deleted, null), $"seed {seed}, version {version}");
            var ranged = EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync(range: new ColumnRange("id", low, high), version: version)), Columns);
            ranged.Should().Equal(await DuckDbRowsAsync(path, files, deleted, (low, high)), $"seed {seed}, version {version}, id in [{low}, {high}]");
        }

        // Weft's own cache of a long log (_weft_snapshots, written on open) keeps the vectors: a table
        // opened from it reads the same rows.
        var cached = new EventTableOptions { Delta = new DeltaTableOptions { SnapshotInterval = 1 } };
        await EventTable.OpenAsync(path, cached);
        Directory.EnumerateFiles(Path.Combine(path, "_delta_log", "_weft_snapshots"), "*.state.json").Should().NotBeEmpty();
        var fromCache = await EventTable.OpenAsync(path, cached);
        EventData.Rows(await EventData.ReadAllAsync(fromCache.ReadAsync()), Columns).Should().Equal(await DuckDbRowsAsync(path, files, deletedAt[1], null));

        var listing = DeltaTableFormatter.Ls(await table.Log.GetSnapshotAsync());
        var live = (sizes.Sum() - secondDelete.Count - inlineDelete.Count).ToString(CultureInfo.InvariantCulture);
        listing.Should().Contain(l => l.EndsWith($" bytes, {live} rows", StringComparison.Ordinal));
    }

    /// <summary>
    /// A table cleaned up behind a checkpoint whose adds carry the vectors (the checkpoint schema's
    /// <c>add.deletionVector</c> struct, written by DuckDB) reads as the log it replaced did.
    /// </summary>
    [Fact]
    public async Task Deletion_vectors_in_a_checkpoint_are_honoured()
    {
        var path = _directory.Combine("checkpointed");
        var random = new Random(7);
        var sizes = new[] { 5_000, 3_000 };
        var files = await WriteDataFilesAsync(path, sizes);
        var stored = RandomRows(random, sizes[0]);
        var inline = RandomRows(random, sizes[1]);
        var uuid = Guid.NewGuid();
        var dvStored = (await WriteVectorFileAsync(Path.Combine(path, $"deletion_vector_{uuid:D}.bin"), [stored], runs: true))[0]
            with { StorageType = "u", PathOrInlineDv = await Z85Async(uuid) };
        var dvInline = (await InlineVectorsAsync([inline], runs: false))[0];
        var actions = new[] { Protocol(), Metadata(), Add(path, files[0], sizes[0], dvStored), Add(path, files[1], sizes[1], dvInline) };
        await TestTables.WriteRawLogAsync(path, 0, actions);
        await TestTables.WriteRawLogAsync(path, 1, new JsonObject { ["commitInfo"] = new JsonObject { ["timestamp"] = 1_764_000_000_000L, ["operation"] = "OPTIMIZE" } });

        var vectorType = "STRUCT(storageType VARCHAR, pathOrInlineDv VARCHAR, \"offset\" INTEGER, sizeInBytes INTEGER, cardinality BIGINT)";
        var addType = $"STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, deletionVector {vectorType})";
        var protocolType = "STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER, readerFeatures VARCHAR[], writerFeatures VARCHAR[])";
        var metadataType = "STRUCT(id VARCHAR, format STRUCT(provider VARCHAR, options MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], configuration MAP(VARCHAR, VARCHAR), createdTime BIGINT)";
        var input = _directory.Combine("checkpoint.json");
        await File.WriteAllLinesAsync(input, actions.Select(a => a.ToJsonString()), new UTF8Encoding(false));
        var log = Path.Combine(path, "_delta_log");
        await DuckDb.RunAsync(
            $"COPY (SELECT add, metaData, protocol FROM read_json({DuckDb.Quote(input)}, format = 'newline_delimited', columns = {{add: '{addType}', metaData: '{metadataType}', protocol: '{protocolType}'}}))"
            + $" TO {DuckDb.Quote(Path.Combine(log, "00000000000000000001.checkpoint.parquet"))} (FORMAT parquet)");
        File.Delete(Path.Combine(log, "00000000000000000000.json"));

        var table = await EventTable.OpenAsync(path);
        var rows = EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync()), Columns);

        rows.Should().Equal(await DuckDbRowsAsync(path, files, [stored, inline], null));
        rows.Should().HaveCount(sizes.Sum() - stored.Count - inline.Count);
    }

    /// <summary>
    /// A vector that cannot be trusted fails the read naming the data file and what is wrong with the
    /// vector, rather than returning rows another engine deleted; the log and files are left as they are.
    /// </summary>
    [Fact]
    public async Task A_damaged_or_missing_vector_fails_the_read_naming_the_file_and_the_problem()
    {
        var path = _directory.Combine("damaged");
        var files = await WriteDataFilesAsync(path, [3_000]);
        var uuid = Guid.NewGuid();
        var vectorFile = Path.Combine(path, $"deletion_vector_{uuid:D}.bin");
        var good = (await WriteVectorFileAsync(vectorFile, [[1, 2, 3, 2_999]], runs: false))[0]
            with { StorageType = "u", PathOrInlineDv = await Z85Async(uuid) };
        var original = await File.ReadAllBytesAsync(vectorFile);

        async Task<string> ReadFailureAsync(DeletionVectorDescriptor vector, byte[]? content)
        {
            Directory.Delete(Path.Combine(path, "_delta_log"), recursive: true);
            await TestTables.WriteRawLogAsync(path, 0, Protocol(), Metadata(), Add(path, files[0], 3_000, vector));
            if (content is null)
            {
                File.Delete(vectorFile);
            }
            else
            {
                await File.WriteAllBytesAsync(vectorFile, content);
            }

            var table = await EventTable.OpenAsync(path);
            var read = async () => await EventData.ReadAllAsync(table.ReadAsync());
            var error = (await read.Should().ThrowAsync<DataFileException>()).Which;
            error.Message.Should().Contain(files[0]);
            return error.Message;
        }

        var flipped = (byte[])original.Clone();
        flipped[good.Offset!.Value + 4 + 20] ^= 0x40; // a bit inside the bitmap: its CRC-32 no longer matches
        (await ReadFailureAsync(good, flipped)).Should().Contain("fails its checksum");
        (await ReadFailureAsync(good with { SizeInBytes = good.SizeInBytes + 4 }, original)).Should().Contain($"holds a vector of {good.SizeInBytes} bytes");
        (await ReadFailureAsync(good with { Cardinality = 5 }, original)).Should().Contain("deletes 4 rows, but its descriptor says 5");
        (await ReadFailureAsync(good, null)).Should().Contain("is missing").And.Contain(vectorFile);

        // A vector naming a row past the file's end (here for a file of 3,000 rows) is not the file's.
        var beyond = (await WriteVectorFileAsync(vectorFile, [[10, 3_000]], runs: false))[0] with { StorageType = "u", PathOrInlineDv = good.PathOrInlineDv };
        (await ReadFailureAsync(beyond, await File.ReadAllBytesAsync(vectorFile))).Should().Contain("deletes row 3000, but the data file holds 3000 rows");
    }

    /// <summary>
    /// Weft reads a table with deletion vectors but never writes it (its writer protocol is 7), and will
    /// not hand out a read_parquet query that would bring the deleted rows back.
    /// </summary>
    [Fact]
    public async Task A_table_with_deletion_vectors_refuses_writes_and_a_plain_DuckDB_query()
    {
        var path = _directory.Combine("readonly");
        var files = await WriteDataFilesAsync(path, [2_000]);
        var dv = (await InlineVectorsAsync([[0, 1]], runs: false))[0];
        await TestTables.WriteRawLogAsync(path, 0, Protocol(), Metadata(), Add(path, files[0], 2_000, dv));
        var table = await DeltaTable.OpenAsync(path);
        var snapshot = await table.GetSnapshotAsync();

        var query = () => DeltaTableFormatter.DuckDbQuery(snapshot);
        query.Should().Throw<NotSupportedException>().WithMessage("*1 of the 1 files of version 0 have deletion vectors*delta_scan*");
        var commit = () => table.CommitAsync(TestTables.Append(TestTables.WriteFile(path, "2026-11-23T10", "stream")));
        (await commit.Should().ThrowAsync<DeltaLogException>()).WithMessage("*writer version 7 with writer features [deletionVectors]*");
        // A checkpoint Weft wrote would drop the vectors other engines need: none is written.
        var checkpoint = () => table.WriteCheckpointAsync();
        await checkpoint.Should().ThrowAsync<DeltaLogException>();
        Directory.GetFiles(Path.Combine(path, "_delta_log")).Select(Path.GetFileName).Should().Equal("00000000000000000000.json");
    }

    // ------------------------------------------------------------------ fixtures

    /// <summary>Distinct row numbers below <paramref name="fileRows"/>: scattered, dense, or in runs.</summary>
    private static List<int> RandomRows(Random random, int fileRows)
    {
        var rows = new HashSet<int>();
        switch (random.Next(3))
        {
            case 0:
                for (int i = random.Next(1, 200); i > 0; i--)
                {
                    rows.Add(random.Next(fileRows));
                }

                break;
            case 1:
                double share = random.NextDouble() * 0.5;
                for (int r = 0; r < fileRows; r++)
                {
                    if (random.NextDouble() < share)
                    {
                        rows.Add(r);
                    }
                }

                break;
            default:
                for (int i = random.Next(1, 20); i > 0; i--)
                {
                    int start = random.Next(fileRows), length = random.Next(1, 3_000);
                    for (int r = start; r < Math.Min(fileRows, start + length); r++)
                    {
                        rows.Add(r);
                    }
                }

                break;
        }

        return [.. rows.Order()];
    }

    private async Task<List<string>> WriteDataFilesAsync(string path, IReadOnlyList<int> sizes)
    {
        Directory.CreateDirectory(Path.Combine(path, "_delta_log"));
        var names = new List<string>();
        var statements = new List<string>();
        long first = 0;
        for (int i = 0; i < sizes.Count; i++)
        {
            var name = $"part-{i:D5}-{Guid.NewGuid():D}.c000.snappy.parquet";
            names.Add(name);
            statements.Add(
                $"COPY (SELECT i AS id, (i * 7919) % 1000 AS user_id, CASE WHEN i % 13 = 0 THEN NULL ELSE 'n' || i END AS name FROM range({first}, {first + sizes[i]}) t(i)) "
                + $"TO {DuckDb.Quote(Path.Combine(path, name))} (FORMAT parquet, ROW_GROUP_SIZE 1000)");
            first += sizes[i];
        }

        await DuckDb.RunAsync([.. statements]);
        return names;
    }

    private static async Task<int> RowGroupsAsync(string file)
    {
        await using var reader = await ParquetFileReader.OpenAsync(file);
        return reader.RowGroups.Count;
    }

    /// <summary>The rows DuckDB reads from the files, the given row numbers of each left out, in <see cref="EventData.Rows"/>' form.</summary>
    private static async Task<List<string>> DuckDbRowsAsync(string path, IReadOnlyList<string> files, IReadOnlyList<List<int>> deleted, (long Low, long High)? range)
    {
        var parts = new List<string>();
        for (int i = 0; i < files.Count; i++)
        {
            var notDeleted = deleted[i].Count == 0 ? "" : $" AND file_row_number NOT IN ({string.Join(",", deleted[i])})";
            var inRange = range is { } r ? $" AND id BETWEEN {r.Low} AND {r.High}" : "";
            parts.Add($"SELECT id, user_id, name FROM read_parquet({DuckDb.Quote(Path.Combine(path, files[i]))}, file_row_number = true) WHERE true{notDeleted}{inRange}");
        }

        var result = (await DuckDb.RunAsync(string.Join(" UNION ALL ", parts)))[0];
        var rows = result.Rows.Select(row =>
            $"id={row[0].GetString()}|user_id={row[1].GetString()}|name={(row[2].ValueKind == JsonValueKind.Null ? "null" : "\"" + row[2].GetString() + "\"")}|").ToList();
        rows.Sort(StringComparer.Ordinal);
        return rows;
    }

    private static async Task<List<DeletionVectorDescriptor>> WriteVectorFileAsync(string file, IReadOnlyList<List<int>> sets, bool runs)
    {
        var request = new JsonObject { ["mode"] = "file", ["path"] = file, ["vectors"] = Vectors(sets, runs) };
        var result = JsonNode.Parse(await NodeScript.RunAsync("deletion-vector.mjs", request.ToJsonString(), file))!.AsArray();
        return [.. result.Select(v => new DeletionVectorDescriptor("p", file, (int)v!["sizeInBytes"]!, (long)v["cardinality"]!, (int)v["offset"]!))];
    }

    private static async Task<List<DeletionVectorDescriptor>> InlineVectorsAsync(IReadOnlyList<List<int>> sets, bool runs)
    {
        var request = new JsonObject { ["mode"] = "inline", ["vectors"] = Vectors(sets, runs) };
        var result = JsonNode.Parse(await NodeScript.RunAsync("deletion-vector.mjs", request.ToJsonString(), "inline"))!.AsArray();
        return [.. result.Select(v => new DeletionVectorDescriptor("i", (string)v!["pathOrInlineDv"]!, (int)v["sizeInBytes"]!, (long)v["cardinality"]!))];
    }

    private static JsonArray Vectors(IReadOnlyList<List<int>> sets, bool runs) =>
        [.. sets.Select(s => (JsonNode)new JsonObject { ["rows"] = new JsonArray([.. s.Select(r => (JsonNode)r)]), ["runs"] = runs })];

    /// <summary>The UUID's 16 bytes (in its canonical text's order) in Z85, as the reference script encodes them.</summary>
    private static async Task<string> Z85Async(Guid uuid)
    {
        var request = new JsonObject { ["mode"] = "z85", ["hex"] = uuid.ToString("N") };
        return (string)JsonNode.Parse(await NodeScript.RunAsync("deletion-vector.mjs", request.ToJsonString(), "z85"))!["text"]!;
    }

    private static JsonObject Protocol() => new()
    {
        ["protocol"] = new JsonObject
        {
            ["minReaderVersion"] = 3,
            ["minWriterVersion"] = 7,
            ["readerFeatures"] = new JsonArray("deletionVectors"),
            ["writerFeatures"] = new JsonArray("deletionVectors"),
        },
    };

    private static JsonObject Metadata() => new()
    {
        ["metaData"] = new JsonObject
        {
            ["id"] = Guid.NewGuid().ToString(),
            ["format"] = new JsonObject { ["provider"] = "parquet", ["options"] = new JsonObject() },
            ["schemaString"] = Schema,
            ["partitionColumns"] = new JsonArray(),
            ["configuration"] = new JsonObject { ["delta.enableDeletionVectors"] = "true" },
            ["createdTime"] = 1_764_000_000_000L,
        },
    };

    private static JsonObject Add(string path, string file, int rows, DeletionVectorDescriptor? vector)
    {
        var add = new JsonObject
        {
            ["path"] = file,
            ["partitionValues"] = new JsonObject(),
            ["size"] = new FileInfo(Path.Combine(path, file)).Length,
            ["modificationTime"] = 1_764_000_000_000L,
            ["dataChange"] = true,
            ["stats"] = $"{{\"numRecords\":{rows.ToString(CultureInfo.InvariantCulture)},\"tightBounds\":{(vector is null ? "true" : "false")}}}",
        };
        if (vector is not null)
        {
            add["deletionVector"] = VectorJson(vector);
        }

        return new JsonObject { ["add"] = add };
    }

    private static JsonObject Remove(string file, DeletionVectorDescriptor vector) => new()
    {
        ["remove"] = new JsonObject
        {
            ["path"] = file,
            ["deletionTimestamp"] = 1_764_000_100_000L,
            ["dataChange"] = true,
            ["deletionVector"] = VectorJson(vector),
        },
    };

    private static JsonObject VectorJson(DeletionVectorDescriptor vector)
    {
        var json = new JsonObject
        {
            ["storageType"] = vector.StorageType,
            ["pathOrInlineDv"] = vector.PathOrInlineDv,
            ["sizeInBytes"] = vector.SizeInBytes,
            ["cardinality"] = vector.Cardinality,
        };
        if (vector.Offset is { } offset)
        {
            json["offset"] = offset;
        }

        return json;
    }
}
