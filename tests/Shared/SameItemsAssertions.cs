using FluentAssertions;
using FluentAssertions.Collections;
using FluentAssertions.Execution;

namespace Weft.Testing;

/// <summary>
/// Compares two collections as multisets (each item as often in both, order aside) by the items' own
/// equality, in linear time. FluentAssertions' <c>BeEquivalentTo</c> on collections matches every item
/// against every other through its structural engine: 2,000 strings take ~19 s and 4,000 ~78 s, which
/// was most of the streaming suite's time. Use this for collections of strings, numbers and tuples of
/// them; keep <c>BeEquivalentTo</c> for object graphs (arrays compare by reference here).
/// </summary>
public static class SameItemsAssertions
{
    private const int Shown = 5;

    public static AndConstraint<TAssertions> HaveSameItemsAs<TCollection, T, TAssertions>(
        this GenericCollectionAssertions<TCollection, T, TAssertions> assertions, IEnumerable<T> expected, string because = "", params object[] becauseArgs)
        where TCollection : IEnumerable<T>
        where TAssertions : GenericCollectionAssertions<TCollection, T, TAssertions>
    {
        ArgumentNullException.ThrowIfNull(assertions);
        ArgumentNullException.ThrowIfNull(expected);
        var missing = new List<T>();
        var unexpected = new List<T>();
        if (assertions.Subject is { } subject)
        {
            var counts = new Dictionary<Item<T>, int>();
            foreach (var item in expected)
            {
                counts[new(item)] = counts.GetValueOrDefault(new(item)) + 1;
            }

            foreach (var item in subject)
            {
                if (counts.TryGetValue(new(item), out var left) && left > 0)
                {
                    counts[new(item)] = left - 1;
                }
                else
                {
                    unexpected.Add(item);
                }
            }

            foreach (var (item, left) in counts)
            {
                missing.AddRange(Enumerable.Repeat(item.Value, left));
            }
        }

        Execute.Assertion
            .BecauseOf(because, becauseArgs)
            .ForCondition(assertions.Subject is not null)
            .FailWith("Expected the same items as {0}{reason}, but found <null>.", expected)
            .Then
            .ForCondition(missing.Count == 0 && unexpected.Count == 0)
            .FailWith(
                "Expected the same items{reason}, but {0} expected item(s) were missing (first: {1}) and {2} item(s) were not expected (first: {3}).",
                missing.Count, missing.Take(Shown).ToList(), unexpected.Count, unexpected.Take(Shown).ToList());
        return new AndConstraint<TAssertions>((TAssertions)assertions);
    }

    /// <summary>An item as a dictionary key: a null one too, compared by the items' default equality.</summary>
    private readonly record struct Item<T>(T Value);
}
