using System.Collections.Immutable;
using System.Text;
using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// <see cref="JsonRows.ReadLines"/> reads a JSON-lines file as bytes: every non-empty line whole, in
/// order, numbered from 1, its bytes untouched (bytes that are not UTF-8 included), a "\r\n" line end and
/// a leading byte order mark dropped, lines longer than its read buffer and a last line without a line
/// end included. The expectation is a plain split of the same bytes.
/// </summary>
public sealed class JsonLinesTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "weft-jsonl-tests", Guid.NewGuid().ToString("N"));

    public JsonLinesTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    public static TheoryData<int> Seeds() => [.. Enumerable.Range(1, 25)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Lines_are_read_as_the_bytes_between_line_ends(int seed)
    {
        var random = new Random(seed);
        // No '\r' or '\n' inside a line: which line ends a file uses is the generator's choice below.
        byte[] alphabet = [(byte)'{', (byte)'}', (byte)'"', (byte)'a', (byte)' ', 0xC3, 0xA9, 0xFF, 0xE9, 0x00, 0xEF, 0xBB, 0xBF];
        var lines = new List<byte[]>();
        for (int i = random.Next(0, 40); i > 0; i--)
        {
            // Mostly short lines, some empty, and now and then one longer than the reader's 64 KiB buffer.
            int length = random.Next(10) == 0 ? random.Next(60_000, 200_000) : random.Next(4) == 0 ? 0 : random.Next(1, 80);
            lines.Add([.. Enumerable.Range(0, length).Select(_ => alphabet[random.Next(alphabet.Length)])]);
        }

        if (lines.Count > 0 && lines[0] is [0xEF, 0xBB, 0xBF, ..])
        {
            lines[0] = [(byte)'a', .. lines[0]]; // a line 1 that starts like a byte order mark is not one
        }

        bool bom = random.Next(3) == 0, finalNewline = random.Next(2) == 0;
        var file = new List<byte>();
        if (bom)
        {
            file.AddRange(new byte[] { 0xEF, 0xBB, 0xBF });
        }

        for (int i = 0; i < lines.Count; i++)
        {
            file.AddRange(lines[i]);
            if (i < lines.Count - 1 || finalNewline)
            {
                file.AddRange(random.Next(2) == 0 ? "\r\n"u8.ToArray() : "\n"u8.ToArray());
            }
        }

        var path = Path.Combine(_directory, $"lines{seed}.jsonl");
        File.WriteAllBytes(path, [.. file]);

        var expected = new List<(string Source, string Hex)>();
        for (int i = 0; i < lines.Count; i++)
        {
            if (lines[i].Length > 0)
            {
                expected.Add(($"{path}:{i + 1}", Convert.ToHexString(lines[i])));
            }
        }

        var actual = JsonRows.ReadLines(path).Select(r => (r.Source, Convert.ToHexString(r.Json.Span))).ToList();

        actual.Should().Equal(expected, $"seed {seed}: {lines.Count} lines, BOM {bom}, final line end {finalNewline}");
    }

    [Fact]
    public void An_empty_file_and_one_holding_only_line_ends_have_no_lines()
    {
        var empty = Path.Combine(_directory, "empty.jsonl");
        File.WriteAllBytes(empty, []);
        var blank = Path.Combine(_directory, "blank.jsonl");
        File.WriteAllBytes(blank, "\n\r\n\n"u8.ToArray());

        JsonRows.ReadLines(empty).Should().BeEmpty();
        JsonRows.ReadLines(blank).Should().BeEmpty();
    }

    /// <summary>
    /// A row whose string is not text (bytes that are not UTF-8, or an unpaired surrogate escape) is
    /// refused naming what is wrong, and the rows around it are read: before, reading its value threw out
    /// of the whole read.
    /// </summary>
    [Fact]
    public void A_row_holding_a_string_that_is_not_text_is_refused_and_the_others_read()
    {
        var path = Path.Combine(_directory, "rows.jsonl");
        byte[] latin1 = [.. "{\"item_id\":2,\"category\":\"caf"u8, 0xE9, .. "\"}"u8];
        File.WriteAllBytes(path, [.. "{\"item_id\":1,\"category\":\"ok\"}\n"u8, .. latin1, (byte)'\n', .. "{\"item_id\":3,\"category\":\"\\ud800\"}\n{\"item_id\":4,\"category\":\"fine\"}\n"u8]);
        ImmutableArray<FieldDefinition> schema = [new("item_id", WeftType.Int64), new("category", WeftType.String)];

        var (rows, bad) = JsonRows.Read(JsonRows.ReadLines(path), schema, "enrichment");

        rows.RowCount.Should().Be(2);
        Enumerable.Range(0, 2).Select(i => rows["category"].GetValue(i)).Should().Equal("ok", "fine");
        bad.Select(b => b.Source).Should().Equal($"{path}:2", $"{path}:3");
        bad[0].Reason.Should().Contain("not valid UTF-8: byte 0xE9");
        bad[1].Reason.Should().Contain("\\ud800");
    }

    /// <summary>
    /// A timestamp outside years 1–9999 (nanoseconds written where microseconds belong) is refused as an
    /// event's attribute is: it was kept, and every later formatting of it (a served read, a cast) threw.
    /// </summary>
    [Fact]
    public void A_row_holding_a_timestamp_with_no_date_is_refused_and_the_others_read()
    {
        var path = Path.Combine(_directory, "items.jsonl");
        long nanos = Timestamps.ToMicros(new DateTimeOffset(2026, 11, 30, 0, 0, 0, TimeSpan.Zero)) * 1000;
        File.WriteAllText(path, $"{{\"item_id\":1,\"version_time\":\"2026-11-30T00:00:00Z\"}}\n{{\"item_id\":2,\"version_time\":{nanos}}}\n{{\"item_id\":3,\"version_time\":{Timestamps.MaxMicros}}}\n");
        ImmutableArray<FieldDefinition> schema = [new("item_id", WeftType.Int64), new("version_time", WeftType.Timestamp)];

        var (rows, bad) = JsonRows.Read(JsonRows.ReadLines(path), schema, "enrichment");

        Enumerable.Range(0, rows.RowCount).Select(i => rows["item_id"].GetValue(i)).Should().Equal(1L, 3L);
        bad.Select(b => b.Source).Should().Equal($"{path}:2");
        bad[0].Reason.Should().Contain($"'version_time': {nanos} µs lies outside the years 1–9999");
    }
}
