using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// The dedup executor (a window of hashed ids) against the obvious model: a set of the id strings with
/// a first-in, first-out queue of the last <c>capacity</c> of them.
/// </summary>
public sealed class DedupExecutorTests
{
    private static readonly ExecutorContext Context = new(TestSignals.Engagement());

    /// <summary>Batches of ids drawn from a small alphabet, so repeats inside and across batches and evictions are common.</summary>
    private static readonly Gen<string[][]> Batches =
        Gen.Choose(0, 40).Select(i => i < 30 ? $"e-{i}" : i < 38 ? $"é-{i}\u00a0" : "").ArrayOf().ArrayOf();

    [Fact]
    public void Keeps_the_same_rows_as_a_window_of_strings()
    {
        var property = Prop.ForAll(Batches.ToArbitrary(), Gen.Choose(1, 12).ToArbitrary(), async (batches, capacity) =>
        {
            var dedup = new DedupExecutor(capacity);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var order = new Queue<string>();
            long duplicates = 0;
            foreach (var ids in batches)
            {
                var expected = new List<string>();
                var expectedRows = new List<long>();
                for (int row = 0; row < ids.Length; row++)
                {
                    string id = ids[row];
                    if (seen.Add(id))
                    {
                        expected.Add(id);
                        expectedRows.Add(row);
                        order.Enqueue(id);
                        if (order.Count > capacity)
                        {
                            seen.Remove(order.Dequeue());
                        }
                    }
                    else
                    {
                        duplicates++;
                    }
                }

                var kept = await dedup.ExecuteAsync(Batch(ids), Context, CancellationToken.None);
                ((StringColumn)kept[StandardColumns.EventId]).Values.Should().Equal(expected);
                ((PrimitiveColumn<long>)kept["row"]).Values.Should().Equal(expectedRows);
            }

            dedup.Duplicates.Should().Be(duplicates);
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2_000).WithReplay(0xDED, 0x0B), property);
    }

    [Fact]
    public async Task Forgets_the_oldest_id_once_the_window_is_full()
    {
        var dedup = new DedupExecutor(capacity: 2);
        await dedup.ExecuteAsync(Batch(["a", "b", "c"]), Context, CancellationToken.None);

        var again = await dedup.ExecuteAsync(Batch(["a", "c", "b"]), Context, CancellationToken.None);

        // "a" left the window when "c" came in. Re-entering, it evicts "b": "c" is a repeat, "b" is new again.
        ((StringColumn)again[StandardColumns.EventId]).Values.Should().Equal("a", "b");
        dedup.Duplicates.Should().Be(1);
    }

    private static EventBatch Batch(string[] ids) => new(
        [new FieldDefinition(StandardColumns.EventId, WeftType.String), new FieldDefinition("row", WeftType.Int64)],
        [new StringColumn(ids), new PrimitiveColumn<long>(WeftType.Int64, Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray())]);
}
