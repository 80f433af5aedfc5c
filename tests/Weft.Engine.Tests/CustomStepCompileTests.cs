using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>A custom step's arguments and columns are checked when the signal compiles, not per event.</summary>
public sealed class CustomStepCompileTests
{
    private static SignalDefinition Hashed(string column, string buckets, string output, string produces, WeftType? type = null, string? extraArg = null)
    {
        var args = new Dictionary<string, string> { ["column"] = column, ["buckets"] = buckets, ["output"] = output };
        if (extraArg is not null)
        {
            args[extraArg] = "1";
        }

        var weft = new DefinitionCatalog();
        var click = weft.EventType("click").Attribute("surface", WeftType.String);
        weft.Signal("hashed", tenant: "t")
            .Include(click, c => c.Custom(HashBucketExecutor.ExecutorName, args, new FieldDefinition(produces, type ?? WeftType.Int64)))
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
    [InlineData("surface", "zero", "surface_bucket", "surface_bucket", "$.event_types.click.steps[0].args", "buckets (a positive integer); buckets was 'zero'")]
    [InlineData("surface", "0", "surface_bucket", "surface_bucket", "$.event_types.click.steps[0].args", "buckets (a positive integer); buckets was '0'")]
    [InlineData("surface", "-5", "surface_bucket", "surface_bucket", "$.event_types.click.steps[0].args", "buckets was '-5'")]
    [InlineData("surface", "99999999999999999999", "surface_bucket", "surface_bucket", "$.event_types.click.steps[0].args", "buckets was '99999999999999999999'")]
    [InlineData("surface", "8", "other", "surface_bucket", "$.event_types.click.steps[0].produces", "'surface_bucket' is declared, but executor 'hash_bucket' adds no such column")]
    public void Bad_arguments_are_a_definition_problem_at_the_step_when_the_signal_compiles(string column, string buckets, string output, string produces, string path, string message)
    {
        var compile = () => Compile(Hashed(column, buckets, output, produces));

        var problem = compile.Should().Throw<DefinitionException>().Which.Problems.Should().ContainSingle().Which;
        problem.Path.Should().Be(path);
        problem.Message.Should().Contain(message).And.NotContain("(Parameter");
    }

    /// <summary>
    /// A column declared with another type than the executor adds (it was trusted as declared, and every
    /// event then failed to conform at run time), and a misspelt argument, are problems at compile time.
    /// </summary>
    [Fact]
    public void A_produced_column_of_another_type_or_an_unknown_argument_is_a_problem_at_the_step()
    {
        var retyped = () => Compile(Hashed("surface", "8", "surface_bucket", "surface_bucket", WeftType.String));
        var problem = retyped.Should().Throw<DefinitionException>().Which.Problems.Should().ContainSingle().Which;
        problem.Path.Should().Be("$.event_types.click.steps[0].produces[0].type");
        problem.Message.Should().Be("'surface_bucket' is declared string, but executor 'hash_bucket' adds it as int64");

        var misspelt = () => Compile(Hashed("surface", "8", "surface_bucket", "surface_bucket", extraArg: "bucket"));
        misspelt.Should().Throw<DefinitionException>().Which.Problems.Should().ContainSingle().Which.Message.Should().EndWith("'bucket' is not one of them");
    }
}
