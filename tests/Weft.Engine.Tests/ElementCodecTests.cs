using System.Buffers;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Weft.Engine.Sequences;
using Weft.Storage.Tests.Tables;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// The online payload codec on random rows of every element type, with nulls, empty strings and
/// lists, and text whose UTF-8 length needs a two-byte varint: what <see cref="ElementCodec.Encode"/>
/// writes, <see cref="ElementCodec.Decode"/> reads back, and a payload of another definition is not
/// taken for one of this signal's.
/// </summary>
public sealed class ElementCodecTests
{
    private static readonly (string Name, WeftType Type)[] Attributes =
    [
        ("flag", WeftType.Bool), ("dwell", WeftType.Int32), ("item", WeftType.Int64), ("ratio", WeftType.Float32),
        ("score", WeftType.Float64), ("seen", WeftType.Timestamp), ("surface", WeftType.String),
        ("tags", WeftType.ListOf(ScalarKind.String)), ("emb", WeftType.ListOf(ScalarKind.Float32)),
        ("weights", WeftType.ListOf(ScalarKind.Float64)), ("ids", WeftType.ListOf(ScalarKind.Int64)),
        ("counts", WeftType.ListOf(ScalarKind.Int32)), ("flags", WeftType.ListOf(ScalarKind.Bool)),
    ];

    private static ElementCodec Codec(string signalName)
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click");
        foreach (var (name, type) in Attributes)
        {
            click.Attribute(name, type);
        }

        weft.Signal(signalName, "t").Include(click).Element([.. Attributes.Select(a => a.Name)]).MaxLength(10).Lookback(TimeSpan.FromHours(1));
        var signal = weft.Build().Single();
        return new ElementCodec(signal, SignalJsonWriter.Fingerprint(signal));
    }

    [Fact]
    public void Every_row_decodes_to_the_values_it_was_encoded_from()
    {
        var codec = Codec("codec");
        var property = Prop.ForAll(Gen.Choose(0, int.MaxValue).ToArbitrary(), Gen.Choose(0, 40).ToArbitrary(), (seed, rows) =>
        {
            var batch = RandomBatch(new Random(seed), rows);
            var scratch = new ArrayBufferWriter<byte>(8);

            var payloads = Enumerable.Range(0, rows).Select(r => codec.Encode(batch, r, scratch)).ToList();
            var decoded = codec.Decode(payloads);

            // The whole batch at once encodes each row exactly as the row alone does.
            var all = codec.EncodeAll(batch, scratch);
            all.Should().HaveCount(rows);
            for (int r = 0; r < rows; r++)
            {
                all[r].Should().Equal(payloads[r]);
            }

            payloads.Where(p => !codec.Recognises(p)).Should().BeEmpty();
            for (int c = 0; c < codec.Columns.Length; c++)
            {
                var column = batch[codec.Columns[c].Name];
                for (int r = 0; r < rows; r++)
                {
                    decoded[c].GetValue(r).Should().BeEquivalentTo(column.GetValue(r), $"column {codec.Columns[c].Name}, row {r} (seed {seed})");
                }
            }
        });
        property.QuickCheckThrowOnFailure();
    }

    [Fact]
    public void A_payload_written_under_another_definition_is_not_recognised()
    {
        var payload = Codec("codec").Encode(RandomBatch(new Random(3), 1), 0, new ArrayBufferWriter<byte>(8));

        Codec("other").Recognises(payload).Should().BeFalse();
        Codec("codec").Recognises(payload).Should().BeTrue();
    }

    /// <summary>
    /// The element columns from the event-table tests' generator (edge values, NaN, empty lists,
    /// non-BMP text); event_type from <see cref="Text"/>, whose long strings need a two-byte varint length.
    /// </summary>
    private static EventBatch RandomBatch(Random random, int rows)
    {
        var fields = new List<FieldDefinition> { new(StandardColumns.EventType, WeftType.String) };
        var columns = new List<Column> { new StringColumn([.. Enumerable.Range(0, rows).Select(_ => random.Next(5) == 0 ? null : Text(random))]) };
        foreach (var (name, type) in Attributes)
        {
            var field = new FieldDefinition(name, type);
            fields.Add(field);
            columns.Add(EventData.RandomColumn(field, rows, random));
        }

        return new EventBatch([.. fields], [.. columns]);
    }

    /// <summary>Empty, ASCII, longer than a one-byte varint length, or two- and three-byte characters.</summary>
    private static string Text(Random random) => random.Next(4) switch
    {
        0 => "",
        1 => "web",
        2 => new string('é', random.Next(60, 90)),
        _ => string.Concat(Enumerable.Range(0, random.Next(1, 8)).Select(_ => "ü€x"[random.Next(3)])),
    };
}
