using System.Collections.Immutable;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// The executors' batch gathers make views that copy a column when it is first read. Against a model
/// of plain arrays gathered eagerly: chains of view and copying gathers (rows repeated, dropped,
/// reordered) with some columns read in between and others never, then values, nulls, concatenation
/// and copying gathers of the result.
/// </summary>
public sealed class ColumnViewTests
{
    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new("n", WeftType.Int64, true),
        new("s", WeftType.String, true),
        new("l", WeftType.ListOf(ScalarKind.Int32), true),
        new("b", WeftType.Bool, false),
    ];

    /// <summary>One column's rows as the model sees them: value, or null.</summary>
    private sealed record Model(long?[] N, string?[] S, int[]?[] L, bool[] B)
    {
        public Model Gather(int[] rows) => new(
            [.. rows.Select(r => N[r])], [.. rows.Select(r => S[r])], [.. rows.Select(r => L[r])], [.. rows.Select(r => B[r])]);

        public static Model Concat(Model a, Model b) => new([.. a.N, .. b.N], [.. a.S, .. b.S], [.. a.L, .. b.L], [.. a.B, .. b.B]);
    }

    [Fact]
    public void Chains_of_gathers_read_as_the_eager_model()
    {
        var property = Prop.ForAll(Gen.Choose(0, int.MaxValue).ToArbitrary(), Gen.Choose(0, 30).ToArbitrary(), (seed, rows) =>
        {
            var random = new Random(seed);
            var (batch, model) = Make(random, rows);
            var (other, otherModel) = (batch, model);
            int steps = random.Next(1, 5);
            for (int step = 0; step < steps; step++)
            {
                var picked = Enumerable.Range(0, random.Next(0, batch.RowCount + 3)).Select(_ => batch.RowCount == 0 ? -1 : random.Next(batch.RowCount)).Where(r => r >= 0).ToArray();
                batch = random.Next(3) == 0 ? batch.Gather(picked) : batch.GatherView(picked);
                model = model.Gather(picked);
                Touch(random, batch); // some columns copied here, the rest stay views
                if (step == 0)
                {
                    (other, otherModel) = (batch, model);
                }
            }

            Expect(batch, model);

            // An eager gather of a view, and a concatenation of views, read the same.
            var again = Enumerable.Range(0, batch.RowCount).Reverse().ToArray();
            Expect(new EventBatch(Schema, [.. batch.Columns.Select(c => c.Gather(again))]), model.Gather(again));
            var joined = EventBatch.Concat(Schema, [batch, other]);
            Expect(joined, Model.Concat(model, otherModel));
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(1_000).WithReplay(0x71E, 0x5), property);
    }

    [Fact]
    public void A_view_read_from_two_threads_at_once_gives_both_the_same_values()
    {
        var random = new Random(7);
        var (batch, model) = Make(random, 50_000);
        var rows = Enumerable.Range(0, batch.RowCount).Where(r => r % 3 != 0).ToArray();
        for (int round = 0; round < 20; round++)
        {
            var view = batch.GatherView(rows);
            var reads = new[] { 0, 1 }.AsParallel().WithDegreeOfParallelism(2).Select(_ => (((PrimitiveColumn<long>)view["n"]).Values, ((StringColumn)view["s"]).Values)).ToArray();
            foreach (var (n, s) in reads)
            {
                var expected = model.Gather(rows);
                n.Should().Equal(expected.N.Select(v => v ?? 0));
                s.Should().Equal(expected.S);
            }
        }
    }

    [Fact]
    public void A_copying_gather_copies_and_does_not_follow_later_writes_to_its_rows()
    {
        var (batch, model) = Make(new Random(3), 10);
        var rows = new[] { 4, 2, 9 };
        var copy = batch.Gather(rows);
        rows[0] = 0;
        Expect(copy, model.Gather([4, 2, 9]));

        // Its columns are arrays of their own (of its length), not views of the batch's.
        ((PrimitiveColumn<long>)copy["n"]).Values.Should().NotBeSameAs(((PrimitiveColumn<long>)batch["n"]).Values).And.HaveCount(3);
        ((StringColumn)copy["s"]).Values.Should().NotBeSameAs(((StringColumn)batch["s"]).Values).And.HaveCount(3);
        Expect(copy, model.Gather([4, 2, 9]));
    }

    private static (EventBatch Batch, Model Model) Make(Random random, int rows)
    {
        var n = new long?[rows];
        var s = new string?[rows];
        var l = new int[]?[rows];
        var b = new bool[rows];
        for (int i = 0; i < rows; i++)
        {
            n[i] = random.Next(5) == 0 ? null : random.NextInt64(-1_000, 1_000);
            s[i] = random.Next(5) == 0 ? null : "s" + random.Next(100);
            l[i] = random.Next(5) == 0 ? null : [.. Enumerable.Range(0, random.Next(3)).Select(_ => random.Next(10))];
            b[i] = random.Next(2) == 0;
        }

        var nulls = n.Select(v => v is null).ToArray();
        var columns = new Column[]
        {
            new PrimitiveColumn<long>(WeftType.Int64, [.. n.Select(v => v ?? 0)], nulls.Any(x => x) ? nulls : null),
            new StringColumn(s),
            new ListColumn<int>(WeftType.ListOf(ScalarKind.Int32), l),
            new PrimitiveColumn<bool>(WeftType.Bool, b),
        };
        return (new EventBatch(Schema, columns), new Model(n, s, l, b));
    }

    private static void Touch(Random random, EventBatch batch)
    {
        foreach (var column in batch.Columns)
        {
            switch (random.Next(3))
            {
                case 0:
                    _ = column.Nulls;
                    break;
                case 1 when batch.RowCount > 0:
                    _ = column.GetValue(random.Next(batch.RowCount));
                    break;
            }
        }
    }

    private static void Expect(EventBatch batch, Model model)
    {
        batch.RowCount.Should().Be(model.N.Length);
        var n = (PrimitiveColumn<long>)batch["n"];
        for (int i = 0; i < model.N.Length; i++)
        {
            n.IsNull(i).Should().Be(model.N[i] is null);
            if (model.N[i] is { } value)
            {
                n.Values[i].Should().Be(value);
            }
        }

        n.NullCount.Should().Be(model.N.Count(v => v is null));
        ((StringColumn)batch["s"]).Values.Should().Equal(model.S);
        ((StringColumn)batch["s"]).NullCount.Should().Be(model.S.Count(v => v is null));
        var lists = ((ListColumn<int>)batch["l"]).Values;
        lists.Should().HaveCount(model.L.Length);
        for (int i = 0; i < lists.Length; i++)
        {
            lists[i].Should().BeSameAs(model.L[i]); // list arrays are shared, never copied
        }

        ((PrimitiveColumn<bool>)batch["b"]).Values.Should().Equal(model.B);
        ((PrimitiveColumn<bool>)batch["b"]).Nulls.Should().BeNull();
    }
}
