using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// The router against the obvious model: the rows of each included type, types in ordinal order, rows
/// in input order within a type; rows of other types dropped.
/// </summary>
public sealed class EventTypeRouterTests
{
    private static readonly ExecutorContext Context = new(TestSignals.Engagement());

    private static readonly FieldDefinition[] Schema =
        [new FieldDefinition(StandardColumns.EventType, WeftType.String), new FieldDefinition("row", WeftType.Int64)];

    // More included types than the router remembers by reference, and two it does not include.
    private static readonly string[] Included = [.. Enumerable.Range(0, 11).Select(i => $"type_{(char)('k' - i)}")];
    private static readonly string[] Names = [.. Included, "other", "type_"];

    [Fact]
    public void Routes_each_row_to_its_type_whichever_string_instance_names_it()
    {
        // Each row names its type by the shared instance or by a fresh copy of it, as parsers running
        // in parallel parts hand out instances of their own.
        var rows = (from name in Gen.Choose(0, Names.Length - 1)
                    from fresh in Gen.Elements(false, true)
                    select (Name: name, Fresh: fresh)).ArrayOf();
        var router = new EventTypeRouter(
            Included.Select(t => new EventTypeRouter.Chain(t, [.. Schema], [])), [.. Schema], new RecoveryOptions());
        var property = Prop.ForAll(rows.ToArbitrary(), async drawn =>
        {
            var types = drawn.Select(r => r.Fresh ? new string(Names[r.Name].AsSpan()) : Names[r.Name]).ToArray();
            var batch = new EventBatch([.. Schema], [new StringColumn(types), new PrimitiveColumn<long>(WeftType.Int64, [.. Enumerable.Range(0, types.Length).Select(i => (long)i)])]);

            var routed = await router.ExecuteAsync(batch, Context, CancellationToken.None);

            var expected = Enumerable.Range(0, types.Length)
                .Where(i => Included.Contains(types[i], StringComparer.Ordinal))
                .OrderBy(i => types[i], StringComparer.Ordinal)
                .ThenBy(i => i)
                .ToArray();
            ((PrimitiveColumn<long>)routed["row"]).Values.Should().Equal(expected.Select(i => (long)i));
            ((StringColumn)routed[StandardColumns.EventType]).Values.Should().Equal(expected.Select(i => types[i]), (a, b) => string.Equals(a, b, StringComparison.Ordinal));
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(500).WithReplay(0x70E7, 0x13), property);
    }
}
