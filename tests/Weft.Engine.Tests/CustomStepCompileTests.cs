using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>A custom step's arguments and columns are checked when the signal compiles, not per event.</summary>
public sealed class CustomStepCompileTests
{
    private static SignalDefinition Hashed(string column, string buckets, string output, string produces)
    {
        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("surface", WeftType.String);
        weft.Signal("hashed", tenant: "t")
            .Include(click, c => c.Custom(HashBucketExecutor.ExecutorName, new Dictionary<string, string> { ["column"] = column, ["buckets"] = buckets, ["output"] = output }, new FieldDefinition(produces, WeftType.Int64)))
            .Element(produces).MaxLength(4);
        return weft.Build().Single();
    }

    private static void Compile(SignalDefinition signal) =>
        CompiledSignal.Compile(signal, ExecutorRegistry.CreateDefault(), new Dictionary<string, EnrichmentTable>());

    [Fact]
    public void Arguments_that_name_a_column_the_step_has_compile()
    {
        var compile = () => Compile(Hashed("surface", "8", "surface_bucket", "surface_bucket"));

        compile.Should().NotThrow();
    }

    [Theory]
    [InlineData("nosuchcol", "8", "surface_bucket", "surface_bucket", "$.event_types.click.steps[0].args", "reads column 'nosuchcol', which no step before it has")]
    [InlineData("surface", "zero", "surface_bucket", "surface_bucket", "$.event_types.click.steps[0].args", "buckets (a positive integer)")]
    [InlineData("surface", "0", "surface_bucket", "surface_bucket", "$.event_types.click.steps[0].args", "buckets (a positive integer)")]
    [InlineData("surface", "8", "other", "surface_bucket", "$.event_types.click.steps[0].produces", "'surface_bucket' is declared, but executor 'hash_bucket' adds no such column")]
    public void Bad_arguments_are_a_definition_problem_at_the_step_when_the_signal_compiles(string column, string buckets, string output, string produces, string path, string message)
    {
        var compile = () => Compile(Hashed(column, buckets, output, produces));

        var problem = compile.Should().Throw<DefinitionException>().Which.Problems.Should().ContainSingle().Which;
        problem.Path.Should().Be(path);
        problem.Message.Should().Contain(message).And.NotContain("(Parameter");
    }
}
