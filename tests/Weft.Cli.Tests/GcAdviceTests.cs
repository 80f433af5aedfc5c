using FluentAssertions;
using Xunit;

namespace Weft.Cli.Tests;

public sealed class GcAdviceTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "weft-gc-advice", Guid.NewGuid().ToString("N"));

    public GcAdviceTests() => Directory.CreateDirectory(_root);

    [Fact]
    public void A_linux_machine_without_cache_sizes_and_no_budget_set_gets_the_note()
    {
        var note = GcAdvice.ForStream(Path.Combine(_root, "missing"), _ => null, isLinux: true);

        note.Should().Contain("DOTNET_GCgen0size=0x10000000").And.Contain(Path.Combine(_root, "missing"));
    }

    [Theory]
    [InlineData("DOTNET_GCgen0size")]
    [InlineData("COMPlus_GCgen0size")]
    public void A_budget_already_set_needs_no_note(string variable)
    {
        GcAdvice.ForStream(Path.Combine(_root, "missing"), name => name == variable ? "0x4000000" : null, isLinux: true).Should().BeNull();
    }

    [Fact]
    public void A_machine_that_reports_its_caches_needs_no_note()
    {
        GcAdvice.ForStream(_root, _ => null, isLinux: true).Should().BeNull();
        GcAdvice.ForStream(Path.Combine(_root, "missing"), _ => null, isLinux: false).Should().BeNull();
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
