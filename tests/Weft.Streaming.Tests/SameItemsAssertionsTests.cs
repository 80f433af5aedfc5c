using FluentAssertions;
using Weft.Testing;
using Xunit;
using Xunit.Sdk;

namespace Weft.Streaming.Tests;

/// <summary>The suite's multiset comparison (tests/Shared/SameItemsAssertions.cs) fails where it must.</summary>
public sealed class SameItemsAssertionsTests
{
    [Fact]
    public void A_permutation_passes_and_chains()
    {
        string[] expected = ["a", "b", "b", "c"];
        new[] { "b", "c", "a", "b" }.Should().HaveSameItemsAs(expected).And.HaveCount(4);
        new List<(long, string)> { (2, "x"), (1, "y") }.Should().HaveSameItemsAs([(1L, "y"), (2L, "x")]);
        new string?[] { null, "a" }.Should().HaveSameItemsAs(["a", null]);
    }

    [Fact]
    public void A_missing_item_fails_naming_it()
    {
        var act = () => new[] { "a", "b" }.Should().HaveSameItemsAs(["a", "b", "zz-missing"], "every event is stored");
        act.Should().Throw<XunitException>().WithMessage("*because every event is stored*1 expected item(s) were missing*zz-missing*0 item(s) were not expected*");
    }

    [Fact]
    public void An_unexpected_item_fails_naming_it()
    {
        var act = () => new[] { "a", "zz-extra", "b" }.Should().HaveSameItemsAs(["a", "b"]);
        act.Should().Throw<XunitException>().WithMessage("*0 expected item(s) were missing*1 item(s) were not expected*zz-extra*");
    }

    [Fact]
    public void A_duplicate_counts_as_an_item_of_its_own()
    {
        var twice = () => new[] { "a", "a", "b" }.Should().HaveSameItemsAs(["a", "b"]);
        twice.Should().Throw<XunitException>().WithMessage("*1 item(s) were not expected*");
        var once = () => new[] { "a", "b" }.Should().HaveSameItemsAs(["a", "a", "b"]);
        once.Should().Throw<XunitException>().WithMessage("*1 expected item(s) were missing*");
        var nulls = () => new string?[] { null, null }.Should().HaveSameItemsAs([null]);
        nulls.Should().Throw<XunitException>();
    }

    [Fact]
    public void A_null_collection_fails()
    {
        string[]? none = null;
        var act = () => none.Should().HaveSameItemsAs(["a"]);
        act.Should().Throw<XunitException>().WithMessage("*found <null>*");
    }
}
