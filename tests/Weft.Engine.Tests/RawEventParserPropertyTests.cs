using System.Globalization;
using System.Text;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// The single-pass <see cref="RawEventParser"/> against the JsonDocument parser it replaced
/// (<see cref="ReferenceRawEventParser"/>): same rows, dead letters and skip counts for random events —
/// valid, wrong types, missing fields, nulls, mapped columns, lists, duplicates, escapes, malformed JSON,
/// non-objects, fields in any order.
/// </summary>
public sealed class RawEventParserPropertyTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly long NowMicros = Timestamps.ToMicros(Now);
    private static readonly RawEventParserOptions Options = new() { MaxPayloadBytes = 96 };

    /// <summary>click and save with attributes of every type; view with none. With mapping, click reads its type, user, time and item from other names, and save its type from two names and its note from its event_type.</summary>
    private static CompiledSignal Signal(bool mapped)
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click")
            .Attribute("item_id", WeftType.Int64, nullable: false)
            .Attribute("dwell", WeftType.Int32)
            .Attribute("score", WeftType.Float64)
            .Attribute("ratio", WeftType.Float32)
            .Attribute("flag", WeftType.Bool)
            .Attribute("seen", WeftType.Timestamp)
            .Attribute("tags", WeftType.ListOf(ScalarKind.String))
            .Attribute("emb", WeftType.ListOf(ScalarKind.Float32));
        var save = weft.EventType("save")
            .Attribute("item_id", WeftType.Int64)
            .Attribute("note", WeftType.String, nullable: false)
            .Attribute("counts", WeftType.ListOf(ScalarKind.Int32))
            .Attribute("whens", WeftType.ListOf(ScalarKind.Timestamp))
            .Attribute("flags", WeftType.ListOf(ScalarKind.Bool))
            .Attribute("weights", WeftType.ListOf(ScalarKind.Float64))
            .Attribute("ids", WeftType.ListOf(ScalarKind.Int64));
        var view = weft.EventType("view");
        if (mapped)
        {
            click.MapRawColumn("kind", StandardColumns.EventType).MapRawColumn("uid", StandardColumns.UserId)
                .MapRawColumn("ts", StandardColumns.EventTime).MapRawColumn("item", "item_id");
            save.MapRawColumn("type", StandardColumns.EventType).MapRawColumn("kind", StandardColumns.EventType)
                .MapRawColumn("text", "note").MapRawColumn("event_type", "note");
        }

        weft.Signal("parity", "t")
            .Include(click)
            .Include(save)
            .Include(view)
            .Element("item_id")
            .MaxLength(10)
            .Lookback(TimeSpan.FromHours(1));
        return CompiledSignal.Compile(weft.Build().Single(), ExecutorRegistry.CreateDefault(), new Dictionary<string, EnrichmentTable>());
    }

    private static readonly CompiledSignal Plain = Signal(mapped: false);
    private static readonly CompiledSignal Mapped = Signal(mapped: true);

    private static readonly string[] Keys =
    [
        "event_id", "user_id", "event_type", "event_time", "ingest_time", "tenant",
        "item_id", "dwell", "score", "ratio", "flag", "seen", "tags", "emb", "note", "counts", "whens", "flags", "weights", "ids",
        "kind", "uid", "ts", "item", "type", "text", "extra", "nested", "\\ud800k",
    ];

    [Fact]
    public void Single_pass_parser_matches_the_JsonDocument_parser_on_random_events()
    {
        var cases =
            from seed in Gen.Choose(0, int.MaxValue)
            from count in Gen.Choose(0, 60)
            from mapped in Gen.Elements(false, true)
            select (Seed: seed, Count: count, Mapped: mapped);
        var property = Prop.ForAll(cases.ToArbitrary(), c =>
        {
            var random = new Random(c.Seed);
            var records = Enumerable.Range(0, c.Count).Select(i => new RawRecord(Encoding.UTF8.GetBytes(Event(random)), $"gen:{i}")).ToList();
            AssertSameAsReference(c.Mapped ? Mapped : Plain, records);
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(400).WithReplay(0x5EED5, 0x9E3779B97F4A7C15), property);
    }

    /// <summary>
    /// The fast path for flat objects against the reader alone, on flat events with JSON's corner cases
    /// where the fast path must agree or step aside: whitespace of every kind, numbers in every form
    /// (and near-numbers), literals and near-literals, non-ASCII, escapes and raw control characters in
    /// strings, empty objects, trailing commas, missing colons, content after the object.
    /// </summary>
    [Fact]
    public void The_flat_fast_path_reads_every_event_as_the_reader_does()
    {
        var cases =
            from seed in Gen.Choose(0, int.MaxValue)
            from count in Gen.Choose(1, 40)
            select (Seed: seed, Count: count);
        var property = Prop.ForAll(cases.ToArbitrary(), c =>
        {
            var random = new Random(c.Seed);
            var records = Enumerable.Range(0, c.Count)
                .Select(i => new RawRecord(Encoding.UTF8.GetBytes(random.Next(4) == 0 ? Event(random) : FlatEvent(random)), $"gen:{i}"))
                .ToList();
            var clock = new FakeTimeProvider(Now);
            var fast = new RawEventParser(Plain, clock, Options);
            var reader = new RawEventParser(Plain, clock, Options) { FlatPath = false };
            foreach (var record in records)
            {
                string json = Encoding.UTF8.GetString(record.Json.Span);
                ParseResult expected;
                try
                {
                    expected = reader.Parse([record]);
                }
                catch (InvalidOperationException)
                {
                    fast.Invoking(p => p.Parse([record])).Should().Throw<InvalidOperationException>("event {0}", json);
                    continue;
                }

                var actual = fast.Parse([record]);
                actual.DeadLetters.Should().Equal(expected.DeadLetters, "event {0}", json);
                actual.SkippedOtherTypes.Should().Be(expected.SkippedOtherTypes, "event {0}", json);
                Rows(actual.Events).Should().BeEquivalentTo(Rows(expected.Events), o => o.WithStrictOrdering(), "event {0}", json);
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(500).WithReplay(0xF1A7, 0x9E3779B97F4A7C15), property);
    }

    private static readonly string[] Spaces = ["", "", "", " ", "  ", "\t", "\n", "\r\n", " \n\t "];

    private static readonly string[] Numbers =
    [
        "0", "-0", "7", "-12", "2147483647", "2147483648", "-2147483649", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "1.0", "1.5", "-0.25", "1e3", "1E+3", "2e-3", "0e0", "1.5e10", "12345678901234567890123",
        "01", "-01", "00", "1.", ".5", "-", "+1", "1e", "1e+", "1.e3", "0x10", "1_000", "1,5", "Infinity", "NaN",
    ];

    private static readonly string[] Literals = ["true", "false", "null", "tru", "truex", "nul", "nulls", "False", "TRUE", "fals e"];

    private static readonly string[] Strings =
    [
        "\"\"", "\"click\"", "\"save\"", "\"view\"", "\"other\"", "\"e-1\"", "\"42\"", "\" 42 \"", "\"-7\"", "\"9223372036854775808\"",
        "\"2026-03-01T11:59:00Z\"", "\"2026-03-01T11:59:00.123456Z\"", "\"2026-03-01 11:59:00\"", "\"2026-03-01T12:00:00+02:00\"", "\"not a time\"",
        "\"caf\\u00e9\"", "\"café\"", "\"tab\\there\"", "\"raw\ttab\"", "\"quote\\\"in\"", "\"unterminated",
        "\"\\ud800\"", "\"x\u0001y\"", "\"\\udc00x\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\\ud83d\\ude00\"", "\"a\\u0000b\"", "\"\\\\ud800\"",
    ];

    private static readonly string[] FlatKeys = ["event_id", "user_id", "event_type", "event_time", "ingest_time", "item_id", "dwell", "score", "ratio", "flag", "seen", "note", "extra", "ev\\u0065nt_id", "café"];

    /// <summary>A flat object (or something near one) whose values are scalars of every form.</summary>
    private static string FlatEvent(Random random)
    {
        string Space() => Spaces[random.Next(Spaces.Length)];
        string Scalar(string key) => random.Next(10) switch
        {
            < 3 => Numbers[random.Next(Numbers.Length)],
            < 5 => Literals[random.Next(Literals.Length)],
            < 7 => Strings[random.Next(Strings.Length)],
            _ => key switch
            {
                "event_id" or "note" => Quote("e" + random.Next(100)),
                "event_type" => Quote(new[] { "click", "save", "view" }[random.Next(3)]),
                "event_time" or "seen" => (NowMicros - random.Next(1_000_000)).ToString(CultureInfo.InvariantCulture),
                _ => random.Next(1, 100).ToString(CultureInfo.InvariantCulture),
            },
        };

        var fields = new List<string>();
        foreach (var key in new[] { "event_id", "user_id", "event_type", "event_time", "item_id" })
        {
            if (random.Next(12) > 0)
            {
                fields.Add(key);
            }
        }

        for (int i = random.Next(4); i > 0; i--)
        {
            fields.Add(FlatKeys[random.Next(FlatKeys.Length)]);
        }

        var json = new StringBuilder(Space() + "{" + Space());
        for (int i = 0; i < fields.Count; i++)
        {
            var colon = random.Next(40) == 0 ? "" : ":";
            json.Append(Quote(fields[i])).Append(Space()).Append(colon).Append(Space()).Append(Scalar(fields[i])).Append(Space());
            if (i < fields.Count - 1 || random.Next(30) == 0)
            {
                // Now and then no comma, or something else in its place; the last one a trailing comma.
                json.Append(random.Next(25) == 0 ? new[] { "", ";", "x", ":" }[random.Next(4)] : ",").Append(Space());
            }
        }

        json.Append('}').Append(random.Next(20) == 0 ? " x" : Space());
        return json.ToString();
    }

    [Fact]
    public void Records_read_lazily_parse_as_the_same_records_in_a_list()
    {
        var random = new Random(0x1A2);
        var records = Enumerable.Range(0, 2_500).Select(i => new RawRecord(Encoding.UTF8.GetBytes(Event(random)), $"gen:{i}")).ToList();
        var parser = new RawEventParser(Plain, new FakeTimeProvider(Now), Options);
        var expected = parser.Parse(records);

        // An enumerable that is not a list (a file read line by line) is parsed a chunk at a time.
        var actual = parser.Parse(Lazily(records));

        actual.DeadLetters.Should().Equal(expected.DeadLetters);
        actual.SkippedOtherTypes.Should().Be(expected.SkippedOtherTypes);
        actual.SourceRows.Should().Equal(expected.SourceRows);
        actual.DeadLetterRows.Should().Equal(expected.DeadLetterRows);
        actual.OtherTypeRows.Should().Equal(expected.OtherTypeRows);
        Rows(actual.Events).Should().Equal(Rows(expected.Events));
        expected.SourceRows.Should().Contain(r => r > 2_048, "rows come from every chunk");

        static IEnumerable<RawRecord> Lazily(IEnumerable<RawRecord> source)
        {
            foreach (var r in source)
            {
                yield return r;
            }
        }
    }

    [Fact]
    public void Parsing_in_parallel_parts_gives_what_one_pass_gives()
    {
        var cases =
            from seed in Gen.Choose(0, int.MaxValue)
            from count in Gen.Choose(RawEventParser.MinRecordsPerPart - 100, 5 * RawEventParser.MinRecordsPerPart)
            from parallelism in Gen.Choose(1, 4)
            from mapped in Gen.Elements(false, true)
            select (Seed: seed, Count: count, Parallelism: parallelism, Mapped: mapped);
        var property = Prop.ForAll(cases.ToArbitrary(), c =>
        {
            var random = new Random(c.Seed);
            var records = Enumerable.Range(0, c.Count).Select(i => new RawRecord(Encoding.UTF8.GetBytes(Event(random)), $"gen:{i}")).ToList();
            var parser = new RawEventParser(c.Mapped ? Mapped : Plain, new FakeTimeProvider(Now), Options);
            var expected = parser.Parse((IEnumerable<RawRecord>)records);
            var actual = parser.Parse(records, c.Parallelism);

            actual.DeadLetters.Should().Equal(expected.DeadLetters);
            actual.SkippedOtherTypes.Should().Be(expected.SkippedOtherTypes);
            actual.SourceRows.Should().Equal(expected.SourceRows);
            actual.DeadLetterRows.Should().Equal(expected.DeadLetterRows);
            actual.OtherTypeRows.Should().Equal(expected.OtherTypeRows);
            actual.Events.Schema.Should().Equal(expected.Events.Schema);
            Rows(actual.Events).Should().Equal(Rows(expected.Events));
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(25).WithReplay(0x5EED6, 0x9E3779B97F4A7C15), property);
    }

    [Theory]
    [InlineData("""{"event_id":"a","user_id":1,"event_type":"click","event_time":1764547200000000,"item_id":2}""")]
    [InlineData("""{"dwell":"x","event_id":"a","user_id":7,"event_type":"click","event_time":1764547200000000,"item_id":2}""")]
    [InlineData("""{"item_id":2,"event_id":"a","uid":"8","event_time":"2026-01-01T00:00:00Z","kind":"click"}""")]
    [InlineData("""{"event_type":"click","event_type":5,"kind":"click","user_id":1,"event_id":"e","event_time":1764547200000000,"item":3}""")]
    [InlineData("""{"\u0065vent_type":"click","event_id":"a","user_id":1,"event_time":1764547200000000,"item_id":2,"tags":["a",1]}""")]
    [InlineData("""{"event_type":"click","event_id":"a","user_id":1,"event_time":1764547200000000,"item_id":2,"emb":[1,2.5,1e400]}""")]
    [InlineData("""{"event_type":"click","event_id":"a","user_id":1,"event_time":1764547200000000,"item_id":2} x""")]
    [InlineData("""{"event_type":"save","event_id":"a","user_id":1,"event_time":1764547200000000,"counts":[1,2147483648],"note":"n"}""")]
    [InlineData(""""{"event_type":"other","event_id":"a","user_id":1,"event_time":1764547200000000,"item_id":"""")]
    [InlineData("""[{"event_type":"click"}]""")]
    [InlineData("""  """)]
    [InlineData("""{"event_type":"click","event_id":"a","user_id":1,"event_time":99999999999999999,"item_id":2}""")]
    [InlineData("""{"event_type":"click","event_id":"a","user_id":1,"event_time":1764547200,"item_id":2}""")]
    [InlineData("""{"event_type":"save","event_id":"","user_id":1,"event_time":1764547200000000}""")]
    [InlineData("\uFEFF{\"event_type\":\"view\",\"event_id\":\"a\",\"user_id\":1,\"event_time\":1764547200000000}")]
    [InlineData("{\"event_type\":\"view\",\"event_id\":\"a\",\"user_id\":1,\"event_time\":1764547200000000,\"tenant\":\"\\uD800\"}")]
    public void Single_pass_parser_matches_the_JsonDocument_parser_on_edge_cases(string json)
    {
        var records = new[] { new RawRecord(Encoding.UTF8.GetBytes(json), "case") };
        AssertSameAsReference(Plain, records);
        AssertSameAsReference(Mapped, records);
    }

    private static void AssertSameAsReference(CompiledSignal signal, IReadOnlyList<RawRecord> records)
    {
        var clock = new FakeTimeProvider(Now);
        var reference = new ReferenceRawEventParser(signal, clock, Options);
        var parser = new RawEventParser(signal, clock, Options);
        var expected = reference.Parse(records);
        var actual = parser.Parse(records);

        // Record by record first, so a failure names the event that differs.
        var expectedRows = new List<int>();
        var expectedDeadRows = new List<int>();
        for (int i = 0; i < records.Count; i++)
        {
            var one = reference.Parse([records[i]]);
            var mine = parser.Parse([records[i]]);
            string json = Encoding.UTF8.GetString(records[i].Json.Span);
            mine.DeadLetters.Should().Equal(one.DeadLetters, "event {0}", json);
            mine.SkippedOtherTypes.Should().Be(one.SkippedOtherTypes, "event {0}", json);
            Rows(mine.Events).Should().BeEquivalentTo(Rows(one.Events), o => o.WithStrictOrdering(), "event {0}", json);
            if (one.Events.RowCount == 1)
            {
                expectedRows.Add(i);
            }

            if (one.DeadLetters.Count == 1)
            {
                expectedDeadRows.Add(i);
            }
        }

        actual.DeadLetters.Should().Equal(expected.DeadLetters);
        actual.SkippedOtherTypes.Should().Be(expected.SkippedOtherTypes);
        actual.Events.Schema.Should().Equal(expected.Events.Schema);
        for (int c = 0; c < expected.Events.Columns.Count; c++)
        {
            actual.Events.Columns[c].Type.Should().Be(expected.Events.Columns[c].Type);
            (actual.Events.Columns[c].Nulls is null).Should().Be(expected.Events.Columns[c].Nulls is null, "column {0} has nulls in both or neither", c);
        }

        Rows(actual.Events).Should().BeEquivalentTo(Rows(expected.Events), o => o.WithStrictOrdering());
        actual.SourceRows.Should().Equal(expectedRows);
        actual.DeadLetterRows.Should().Equal(expectedDeadRows);
    }

    /// <summary>Each row as text (values in invariant round-trip form, lists bracketed), so float and array values compare exactly.</summary>
    private static List<string> Rows(EventBatch batch)
    {
        var rows = new List<string>();
        for (int r = 0; r < batch.RowCount; r++)
        {
            var sb = new StringBuilder();
            for (int c = 0; c < batch.Columns.Count; c++)
            {
                sb.Append(batch.Schema[c].Name).Append('=').Append(Text(batch.Columns[c].GetValue(r))).Append(';');
            }

            rows.Add(sb.ToString());
        }

        return rows;
    }

    private static string Text(object? value) => value switch
    {
        null => "null",
        string s => "\"" + s + "\"",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        System.Collections.IEnumerable list => "[" + string.Join(",", list.Cast<object?>().Select(Text)) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString()!,
    };

    /// <summary>A random event: mostly objects with plausible fields in random order, some broken on purpose.</summary>
    private static string Event(Random random)
    {
        switch (random.Next(40))
        {
            case 0: return "";
            case 1: return Value(random, random.Next(Keys.Length));
            case 2: return "[" + Object(random) + "]";
        }

        string json = Object(random);
        switch (random.Next(20))
        {
            case 0: return json[..random.Next(json.Length)]; // truncated
            case 1:
                int at = random.Next(json.Length);
                return json[..at] + "}],:x\"{"[random.Next(7)] + json[at..]; // a stray character
            case 2: return json + (random.Next(2) == 0 ? " {}" : "\n  ");
            default: return json;
        }
    }

    private static string Object(Random random)
    {
        var fields = new List<string>();
        string type = random.Next(10) switch
        {
            < 4 => "click",
            < 7 => "save",
            7 => "view",
            8 => "other",
            _ => "",
        };

        // Most events carry the standard fields (well typed); then random others, duplicates and noise.
        if (random.Next(10) > 0)
        {
            string typeKey = random.Next(20) switch { < 3 => "kind", < 5 => "type", < 8 => "\\u0065vent_type", _ => "event_type" };
            fields.Add($"\"{typeKey}\":{(random.Next(15) == 0 ? Value(random, random.Next(Keys.Length)) : Quote(type))}");
        }

        if (random.Next(12) > 0)
        {
            fields.Add($"\"event_id\":{(random.Next(15) == 0 ? Value(random, 0) : Quote("e" + random.Next(1000)))}");
        }

        if (random.Next(12) > 0)
        {
            fields.Add($"\"{(random.Next(4) == 0 ? "uid" : "user_id")}\":{(random.Next(10) == 0 ? Value(random, 1) : random.Next(1, 50).ToString(CultureInfo.InvariantCulture))}");
        }

        if (random.Next(12) > 0)
        {
            fields.Add($"\"{(random.Next(4) == 0 ? "ts" : "event_time")}\":{(random.Next(6) == 0 ? Value(random, 3) : (NowMicros - random.Next(1_000_000)).ToString(CultureInfo.InvariantCulture))}");
        }

        if (random.Next(3) > 0)
        {
            fields.Add($"\"{(random.Next(4) == 0 ? "item" : "item_id")}\":{(random.Next(8) == 0 ? Value(random, 6) : random.Next(1, 9).ToString(CultureInfo.InvariantCulture))}");
        }

        if (type == "save" && random.Next(4) > 0)
        {
            fields.Add($"\"{(random.Next(4) == 0 ? "text" : "note")}\":{(random.Next(8) == 0 ? Value(random, 14) : Quote("n" + random.Next(9)))}");
        }

        int extra = random.Next(0, 6);
        for (int i = 0; i < extra; i++)
        {
            int key = random.Next(Keys.Length);
            fields.Add($"{Quote(Keys[key])}:{Value(random, key)}");
        }

        if (random.Next(8) == 0 && fields.Count > 0)
        {
            fields.Add(fields[random.Next(fields.Count)]); // a duplicate property
        }

        if (random.Next(8) == 0 && fields.Count > 0)
        {
            var name = fields[random.Next(fields.Count)];
            fields.Add(name[..(name.IndexOf("\":", StringComparison.Ordinal) + 2)] + "null"); // a repeated name, null this time
        }

        // Shuffle: the type may come after the fields it maps.
        for (int i = fields.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (fields[i], fields[j]) = (fields[j], fields[i]);
        }

        string space = random.Next(4) == 0 ? " " : "";
        return "{" + space + string.Join("," + space, fields) + space + "}";
    }

    /// <summary>A value for <see cref="Keys"/>[<paramref name="key"/>]: usually of the right type, often not.</summary>
    private static string Value(Random random, int key)
    {
        if (random.Next(3) > 0)
        {
            string? good = Keys[key] switch
            {
                "event_id" or "note" or "text" or "tenant" => Quote("s" + random.Next(100)),
                "user_id" or "uid" or "item_id" or "item" => random.Next(3) == 0 ? Quote(random.Next(100).ToString(CultureInfo.InvariantCulture)) : random.Next(100).ToString(CultureInfo.InvariantCulture),
                "event_type" or "kind" or "type" => Quote(new[] { "click", "save", "view", "other", "" }[random.Next(5)]),
                "event_time" or "ts" or "ingest_time" or "seen" => Time(random),
                "dwell" => random.Next(-5, 5000).ToString(CultureInfo.InvariantCulture),
                "score" or "ratio" => Number(random),
                "flag" => random.Next(2) == 0 ? "true" : "false",
                "tags" => List(random, () => Quote("t" + random.Next(5))),
                "emb" or "weights" => List(random, () => Number(random)),
                "counts" => List(random, () => random.Next(-9, 99).ToString(CultureInfo.InvariantCulture)),
                "whens" => List(random, () => Time(random)),
                "flags" => List(random, () => random.Next(2) == 0 ? "true" : "false"),
                "ids" => List(random, () => random.Next(2) == 0 ? "12" : "\"34\""),
                _ => null,
            };
            if (good is not null)
            {
                return good;
            }
        }

        return random.Next(16) switch
        {
            0 => "null",
            1 => "true",
            2 => "3000000000",
            3 => "99999999999999999999",
            4 => "1.5",
            5 => "-0",
            6 => Quote(" 42 "),
            7 => Quote("not a time, and longer than forty characters in all"),
            8 => "\"esc\\\"aped \\u00e9\\n\"",
            9 => "{\"a\":[1,{\"b\":null}]}",
            10 => "[]",
            11 => "[1,\"x\",null]",
            12 => "[[1],[2]]",
            13 => Quote("2026-03-01T12:00:00+02:00"),
            14 => "1e400",
            _ => "\"" + new string('x', random.Next(30, 60)) + "\"",
        };
    }

    private static string Time(Random random) => random.Next(6) switch
    {
        0 => Quote(Now.AddMinutes(-random.Next(100)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)),
        1 => Quote(Now.AddDays(2).ToString("O", CultureInfo.InvariantCulture)), // too far ahead
        2 => (NowMicros + (2L * 86_400_000_000)).ToString(CultureInfo.InvariantCulture),
        3 => "1.5",
        _ => (NowMicros - random.Next(10_000_000)).ToString(CultureInfo.InvariantCulture),
    };

    private static string Number(Random random) => random.Next(5) switch
    {
        0 => random.Next(100).ToString(CultureInfo.InvariantCulture),
        1 => "1e-7",
        2 => "0.1",
        _ => (random.NextDouble() * 100).ToString("R", CultureInfo.InvariantCulture),
    };

    private static string List(Random random, Func<string> item)
    {
        int n = random.Next(0, 5);
        return "[" + string.Join(",", Enumerable.Range(0, n).Select(_ => item())) + "]";
    }

    private static string Quote(string s) => "\"" + s + "\"";
}
