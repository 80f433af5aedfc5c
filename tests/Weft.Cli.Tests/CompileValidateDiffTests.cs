using System.Text;
using System.Security.Cryptography;
using FluentAssertions;
using Xunit;

namespace Weft.Cli.Tests;

public class CompileValidateDiffTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    private string Examples => Path.Combine(CliHarness.RepoRoot, "examples", "definitions");

    [Fact]
    public async Task Compile_produces_the_same_bytes_twice_with_matching_fingerprints()
    {
        var first = await _cli.RunAsync("compile", Examples, "--out", _cli.PathOf("a"));
        // Into a folder holding an older definition of the same name: replaced (by a rename, so a reader
        // never sees half of one), and nothing else left behind.
        Directory.CreateDirectory(_cli.PathOf("b"));
        await File.WriteAllTextAsync(_cli.PathOf("b/engagement.json"), """{ "name": "engagement", "version": 1 }""");
        var second = await _cli.RunAsync("compile", Examples, "--out", _cli.PathOf("b"));
        first.Exit.Should().Be(0, first.Err);
        second.Exit.Should().Be(0, second.Err);
        Directory.GetFiles(_cli.PathOf("b")).Select(Path.GetFileName).Order(StringComparer.Ordinal).Should()
            .Equal("engagement.json", "engagement.json.sha256", "searches.json", "searches.json.sha256");
        var files = Directory.GetFiles(_cli.PathOf("a"), "*.json").Select(Path.GetFileName).Order().ToList();
        files.Should().Equal("engagement.json", "searches.json");
        foreach (var f in files)
        {
            var a = await File.ReadAllBytesAsync(_cli.PathOf("a/" + f));
            var b = await File.ReadAllBytesAsync(_cli.PathOf("b/" + f));
            b.Should().Equal(a);
            var sidecar = await File.ReadAllTextAsync(_cli.PathOf($"a/{f}.sha256"));
            sidecar.Should().Be($"{Convert.ToHexStringLower(SHA256.HashData(a))}  {f}\n");
        }
    }

    [Fact]
    public async Task Compiled_json_validates_and_a_compile_error_names_file_and_line()
    {
        await _cli.RunAsync("compile", Examples, "--out", _cli.PathOf("out"));
        var ok = await _cli.RunAsync("validate", _cli.PathOf("out/engagement.json"), _cli.PathOf("out/searches.json"));
        ok.Exit.Should().Be(0, ok.Err);
        ok.Out.Should().Contain("engagement.json: ok (signal 'engagement' v1");

        Directory.CreateDirectory(_cli.PathOf("bad"));
        await File.WriteAllTextAsync(_cli.PathOf("bad/defs.cs"), "public sealed class D : IDefinitionModule\n{\n    public void Define(DefinitionCatalog weft) { weft.Nope(); }\n}\n");
        var bad = await _cli.RunAsync("compile", _cli.PathOf("bad"), "--out", _cli.PathOf("never"));
        bad.Exit.Should().Be(1);
        bad.Err.Should().Contain("defs.cs(3,");
        bad.Err.Should().Contain("'DefinitionCatalog' does not contain a definition for 'Nope'");
        Directory.Exists(_cli.PathOf("never")).Should().BeFalse();
    }

    /// <summary>A signal's problems name the file and line that declared it (a folder of many files said only the signal's name), and a signal declared twice names both.</summary>
    [Fact]
    public async Task Compile_problems_of_a_signal_name_where_it_is_declared()
    {
        Directory.CreateDirectory(_cli.PathOf("defs"));
        await File.WriteAllTextAsync(_cli.PathOf("defs/a.cs"), """
            public sealed class A : IDefinitionModule
            {
                public void Define(DefinitionCatalog weft)
                {
                    var t = weft.EventType("t").Attribute("n", WeftType.Int64);
                    weft.Signal("s1", "x").Include(t).Element("n", "nope");
                    weft.Signal("s2", "x").Include(t).Element("n");
                }
            }
            """);
        await File.WriteAllTextAsync(_cli.PathOf("defs/b.cs"), """
            public sealed class B : IDefinitionModule
            {
                public void Define(DefinitionCatalog weft) => weft.Signal("s2", "x").Include(weft.EventType("u").Attribute("n", WeftType.Int64)).Element("n");
            }
            """);

        var result = await _cli.RunAsync("compile", _cli.PathOf("defs"), "--out", _cli.PathOf("out"));

        result.Exit.Should().Be(1);
        string a = Path.Combine(_cli.PathOf("defs"), "a.cs"), b = Path.Combine(_cli.PathOf("defs"), "b.cs");
        result.Err.Should().Contain($"{a}(6): signal 's1' $.element[1]: column 'nope' is used in element but never produced");
        result.Err.Should().Contain($"{a}(7): signal 's2': declared twice (at {a}(7) and {b}(3))");
        result.Err.Should().NotContain("available: event_id", "columns every element has are no suggestion");
    }

    [Fact]
    public async Task Validate_refuses_a_file_edited_after_compile_by_its_sha256_and_reads_one_with_a_byte_order_mark()
    {
        (await _cli.RunAsync("compile", Examples, "--out", _cli.PathOf("out"))).Exit.Should().Be(0);
        var path = _cli.PathOf("out/engagement.json");
        var original = await File.ReadAllBytesAsync(path);
        await File.WriteAllBytesAsync(path, [.. original, (byte)'\n']); // still valid JSON, no longer what compile wrote

        var edited = await _cli.RunAsync("validate", path);

        edited.Exit.Should().Be(1);
        edited.Err.Should().Contain("its .sha256 says");
        edited.Out.Should().NotContain(": ok");

        // An edit that broke the file: its problems are reported beside the stale hash, not hidden by it.
        var text = Encoding.UTF8.GetString(original);
        await File.WriteAllTextAsync(path, text.Replace("\"max_length\": ", "\"max_length\": \"abc\", \"x_max_length\": ", StringComparison.Ordinal));
        var broken = await _cli.RunAsync("validate", path);
        broken.Exit.Should().Be(1);
        broken.Err.Should().Contain("its .sha256 says").And.Contain("$.max_length").And.Contain("$.x_max_length");

        File.Delete(path + ".sha256");
        await File.WriteAllBytesAsync(path, [0xEF, 0xBB, 0xBF, .. original]);
        var withBom = await _cli.RunAsync("validate", path);
        withBom.Exit.Should().Be(0, withBom.Err);
    }

    [Fact]
    public async Task A_module_that_throws_is_a_compile_error_naming_it_and_the_exception_not_a_crash()
    {
        Directory.CreateDirectory(_cli.PathOf("throws"));
        await File.WriteAllTextAsync(_cli.PathOf("throws/defs.cs"), "public sealed class D : IDefinitionModule\n{\n    public void Define(DefinitionCatalog weft) { string? s = null; weft.EventType(s!.Trim()); }\n}\n");
        await File.WriteAllTextAsync(_cli.PathOf("throws/more.cs"), "public sealed class E : IDefinitionModule\n{\n    public void Define(DefinitionCatalog weft)\n    {\n        throw new InvalidOperationException(\"no catalog today\");\n    }\n}\n");

        var result = await _cli.RunAsync("compile", _cli.PathOf("throws"), "--out", _cli.PathOf("never"));

        result.Exit.Should().Be(1);
        result.Err.Should().Contain(_cli.PathOf("throws/defs.cs") + "(3,").And.Contain("D.Define failed: NullReferenceException");
        result.Err.Should().Contain(_cli.PathOf("throws/more.cs") + "(5,").And.Contain("E.Define failed: InvalidOperationException: no catalog today", "every module's failure is reported, not the first");
        Directory.Exists(_cli.PathOf("never")).Should().BeFalse();
    }

    /// <summary>Decoded leniently, a Latin-1 "café" became "caf\uFFFD" in the compiled signal with nothing said.</summary>
    [Fact]
    public async Task A_definition_file_that_is_not_UTF8_is_refused_naming_the_file_and_line()
    {
        Directory.CreateDirectory(_cli.PathOf("latin1"));
        var text = (await File.ReadAllTextAsync(Directory.GetFiles(Examples, "*.cs").Order(StringComparer.Ordinal).First())).ReplaceLineEndings("\n");
        var bytes = System.Text.Encoding.UTF8.GetBytes("// caf\u0001\n" + text);
        bytes[Array.IndexOf(bytes, (byte)1)] = 0xE9;
        await File.WriteAllBytesAsync(_cli.PathOf("latin1/defs.cs"), bytes);

        var result = await _cli.RunAsync("compile", _cli.PathOf("latin1"), "--out", _cli.PathOf("never"));

        result.Exit.Should().Be(1);
        result.Err.Should().Contain(_cli.PathOf("latin1/defs.cs") + ": not UTF-8 (byte 0xE9 at offset 6, line 1)");
        Directory.Exists(_cli.PathOf("never")).Should().BeFalse();
    }

    [Fact]
    public async Task Missing_inputs_are_IO_errors_exit_2_and_a_signal_compiled_before_but_gone_is_warned_of()
    {
        (await _cli.RunAsync("compile", _cli.PathOf("nowhere"), "--out", _cli.PathOf("o"))).Exit.Should().Be(2);
        var validate = await _cli.RunAsync("validate", _cli.PathOf("nofile.json"));
        validate.Exit.Should().Be(2);
        validate.Err.Should().Contain("no such file");
        Directory.CreateDirectory(_cli.PathOf("a-folder"));
        var diffFolder = await _cli.RunAsync("diff", _cli.PathOf("a-folder"), _cli.PathOf("nofile.json"));
        diffFolder.Exit.Should().Be(2);
        diffFolder.Err.Should().Contain("a-folder: a directory, not a signal JSON file");

        (await _cli.RunAsync("compile", Examples, "--out", _cli.PathOf("o"))).Exit.Should().Be(0);
        Directory.CreateDirectory(_cli.PathOf("renamed"));
        foreach (var file in Directory.GetFiles(Examples, "*.cs"))
        {
            await File.WriteAllTextAsync(_cli.PathOf("renamed/" + Path.GetFileName(file)), (await File.ReadAllTextAsync(file)).Replace("\"searches\"", "\"queries\"", StringComparison.Ordinal));
        }

        var again = await _cli.RunAsync("compile", _cli.PathOf("renamed"), "--out", _cli.PathOf("o"));

        again.Exit.Should().Be(0, again.Err);
        again.Out.Should().Contain("queries.json");
        again.Err.Should().Contain("warning: " + _cli.PathOf("o/searches.json")).And.NotContain("engagement.json");
    }

    [Fact]
    public async Task A_definition_that_breaks_a_rule_fails_compile_with_the_json_path()
    {
        Directory.CreateDirectory(_cli.PathOf("rules"));
        await File.WriteAllTextAsync(_cli.PathOf("rules/defs.cs"), """
            public sealed class D : IDefinitionModule
            {
                public void Define(DefinitionCatalog weft)
                {
                    var t = weft.EventType("click").Attribute("dwell_ms", WeftType.Int32);
                    weft.Signal("s", "t").Include(t, c => c.Where(Col("dwel_ms") > 5)).Element("dwell_ms").MaxLength(0);
                }
            }
            """);
        var result = await _cli.RunAsync("compile", _cli.PathOf("rules"), "--out", _cli.PathOf("never"));
        result.Exit.Should().Be(1);
        result.Err.Should().Contain("signal 's' $.event_types[0].steps[0].where.args[0]: unknown column 'dwel_ms' (hint: did you mean 'dwell_ms'?)");
        result.Err.Should().Contain("signal 's' $.max_length: max_length must be ≥ 1, got 0");
    }

    [Fact]
    public async Task Validate_reports_each_problem_with_its_json_path_and_fails()
    {
        await File.WriteAllTextAsync(_cli.PathOf("broken.json"), """
            {
              "format": "weft.signal/1", "name": "b", "tenant": "t",
              "event_types": [ { "name": "click", "raw_schema": [ { "name": "n", "type": "int63" } ] } ],
              "enrichments": [ { "source": "items", "on": "item_id", "columns": [ "c" ] } ],
              "element": [ "n", "missing" ],
              "max_length": -1, "lookback": "30d"
            }
            """);
        var result = await _cli.RunAsync("validate", _cli.PathOf("broken.json"));
        result.Exit.Should().Be(1);
        result.Err.Should().Contain("$.event_types[0].raw_schema[0].type: unknown type \"int63\"");
        result.Err.Should().Contain("$.enrichments[0].source: unknown enrichment source 'items'");
        result.Err.Should().Contain("$.element[1]: column 'missing' is used in element but never produced");
        result.Err.Should().Contain("$.max_length: max_length must be ≥ 1, got -1");
    }

    /// <summary>Both said "ok" to a custom step every batch and stream run then refused at its start.</summary>
    [Fact]
    public async Task Validate_and_compile_refuse_a_custom_step_whose_args_or_column_the_executor_refuses()
    {
        string Signal(string args) => $$"""
            {
              "format": "weft.signal/1", "name": "s", "tenant": "t",
              "event_types": [ { "name": "click", "raw_schema": [ { "name": "surface", "type": "string" } ],
                "steps": [ { "op": "custom", "executor": "hash_bucket", "args": {{args}}, "produces": [ { "name": "b", "type": "int64" } ] } ] } ],
              "element": [ "b" ], "max_length": 5, "lookback": "1d"
            }
            """;
        await File.WriteAllTextAsync(_cli.PathOf("zero.json"), Signal("""{ "column": "surface", "buckets": "0", "output": "b" }"""));
        await File.WriteAllTextAsync(_cli.PathOf("column.json"), Signal("""{ "column": "surfce", "buckets": "8", "output": "b" }"""));
        await File.WriteAllTextAsync(_cli.PathOf("good.json"), Signal("""{ "column": "surface", "buckets": "8", "output": "b" }"""));

        var zero = await _cli.RunAsync("validate", _cli.PathOf("zero.json"));
        var column = await _cli.RunAsync("validate", _cli.PathOf("column.json"));
        var good = await _cli.RunAsync("validate", _cli.PathOf("good.json"));

        zero.Exit.Should().Be(1);
        zero.Err.Should().Contain("$.event_types.click.steps[0].args: hash_bucket needs args column, output and buckets (a positive integer)");
        column.Exit.Should().Be(1);
        column.Err.Should().Contain("$.event_types.click.steps[0].args: hash_bucket reads column 'surfce'");
        good.Exit.Should().Be(0, good.Err);

        Directory.CreateDirectory(_cli.PathOf("defs"));
        await File.WriteAllTextAsync(_cli.PathOf("defs/defs.cs"), """
            public sealed class D : IDefinitionModule
            {
                public void Define(DefinitionCatalog weft)
                {
                    var t = weft.EventType("click").Attribute("surface", WeftType.String);
                    weft.Signal("s", "t").Include(t, c => c.Custom("hash_bucket", new Dictionary<string, string> { ["column"] = "surface", ["buckets"] = "-1", ["output"] = "b" }, new FieldDefinition("b", WeftType.Int64)))
                        .Element("b").MaxLength(5).Lookback(TimeSpan.FromDays(1));
                }
            }
            """);
        var compile = await _cli.RunAsync("compile", _cli.PathOf("defs"), "--out", _cli.PathOf("never"));
        compile.Exit.Should().Be(1, compile.Out);
        compile.Err.Should().Contain("signal 's' $.event_types.click.steps[0].args: hash_bucket needs args");
        Directory.Exists(_cli.PathOf("never")).Should().BeFalse();
    }

    [Fact]
    public async Task Diff_says_additive_for_an_added_column_and_breaking_for_a_changed_type()
    {
        await _cli.RunAsync("compile", Examples, "--out", _cli.PathOf("v1"));
        string v1 = await File.ReadAllTextAsync(_cli.PathOf("v1/searches.json"));
        await File.WriteAllTextAsync(_cli.PathOf("added.json"), v1.Replace(
            "\"element\": [", "\"element\": [\n    { \"name\": \"query\", \"type\": \"string\", \"nullable\": true },", StringComparison.Ordinal));
        var added = await _cli.RunAsync("diff", _cli.PathOf("v1/searches.json"), _cli.PathOf("added.json"));
        added.Exit.Should().Be(0, added.Err);
        added.Out.Should().StartWith("additive\n").And.Contain("$.element.query: column 'query' (string) added");

        // Change surface from string to int64 via a cast in the chain.
        string retyped = v1.Replace(
            "\"steps\": [", "\"steps\": [\n        { \"op\": \"map\", \"columns\": [ { \"name\": \"surface\", \"from\": \"surface\", \"cast\": \"int64\" } ] },", StringComparison.Ordinal)
            .Replace("\"name\": \"surface\",\n      \"type\": \"string\"", "\"name\": \"surface\",\n      \"type\": \"int64\"", StringComparison.Ordinal);
        await File.WriteAllTextAsync(_cli.PathOf("retyped.json"), retyped);
        var breaking = await _cli.RunAsync("diff", _cli.PathOf("v1/searches.json"), _cli.PathOf("retyped.json"));
        breaking.Out.Should().StartWith("breaking\n").And.Contain("column 'surface' changed type string → int64");
        breaking.Exit.Should().Be(1);
        breaking.Err.Should().Contain("bump \"version\" above 1");
    }
}
