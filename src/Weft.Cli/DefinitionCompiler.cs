using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Weft.Definitions;
using Weft.Engine;

namespace Weft.Cli;

/// <summary>The result of compiling definition files: frozen signals, or every error with file and line.</summary>
internal sealed record CompileOutcome(IReadOnlyList<SignalDefinition> Signals, IReadOnlyList<string> Errors);

/// <summary>
/// Compiles a folder of C# definition files in-process with Roslyn, runs every
/// <see cref="IDefinitionModule"/> in it, and freezes the signals through the validating JSON reader.
/// </summary>
internal static class DefinitionCompiler
{
    private const string GlobalUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.Linq;
        global using Weft.Definitions;
        global using static Weft.Definitions.Expr;
        """;

    public static async Task<CompileOutcome> CompileFolderAsync(string folder, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(folder))
        {
            return new CompileOutcome([], [$"{folder}: no such directory"]);
        }

        var files = Directory.GetFiles(folder, "*.cs", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0)
        {
            return new CompileOutcome([], [$"{folder}: no .cs definition files"]);
        }

        var sources = new List<(string Path, string Text)>();
        var unreadable = new List<string>();
        foreach (var f in files)
        {
            var text = Decode(await File.ReadAllBytesAsync(f, cancellationToken).ConfigureAwait(false), out var problem);
            if (text is null)
            {
                unreadable.Add($"{f}: {problem}");
            }
            else
            {
                sources.Add((f, text));
            }
        }

        return unreadable.Count > 0 ? new CompileOutcome([], unreadable) : Compile(sources, cancellationToken);
    }

    /// <summary>
    /// A definition file's text: UTF-8 (with or without a byte-order mark), or UTF-16 with one. Bytes
    /// in another encoding are refused: decoded leniently, a Latin-1 "café" became "caf\uFFFD" in the
    /// compiled signal, with nothing said.
    /// </summary>
    internal static string? Decode(byte[] bytes, out string? problem)
    {
        problem = null;
        if (bytes.AsSpan().StartsWith((byte[])[0xFF, 0xFE]))
        {
            return System.Text.Encoding.Unicode.GetString(bytes, 2, bytes.Length - 2);
        }

        if (bytes.AsSpan().StartsWith((byte[])[0xFE, 0xFF]))
        {
            return System.Text.Encoding.BigEndianUnicode.GetString(bytes, 2, bytes.Length - 2);
        }

        int start = bytes.AsSpan().StartsWith((byte[])[0xEF, 0xBB, 0xBF]) ? 3 : 0;
        if (NotText.FirstInvalidUtf8(bytes.AsSpan(start)) is >= 0 and var bad)
        {
            int at = start + bad;
            int line = 1 + bytes.AsSpan(0, at).Count((byte)'\n');
            problem = $"not UTF-8 (byte 0x{bytes[at]:X2} at offset {at}, line {line}); save the file as UTF-8";
            return null;
        }

        return System.Text.Encoding.UTF8.GetString(bytes, start, bytes.Length - start);
    }

    public static CompileOutcome Compile(IReadOnlyList<(string Path, string Text)> sources, CancellationToken cancellationToken)
    {
        var options = new CSharpParseOptions(LanguageVersion.Latest);
        var trees = new List<SyntaxTree> { CSharpSyntaxTree.ParseText(GlobalUsings, options, "<global usings>", System.Text.Encoding.UTF8, cancellationToken) };
        foreach (var (path, text) in sources)
        {
            trees.Add(CSharpSyntaxTree.ParseText(text, options, path, System.Text.Encoding.UTF8, cancellationToken));
        }

        var compilation = CSharpCompilation.Create(
            "Weft.UserDefinitions",
            trees,
            References(),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, deterministic: true));

        using var image = new MemoryStream();
        using var symbols = new MemoryStream();
        // With symbols, an exception a definition throws is reported at its file and line.
        var emit = compilation.Emit(image, symbols, options: new Microsoft.CodeAnalysis.Emit.EmitOptions(debugInformationFormat: Microsoft.CodeAnalysis.Emit.DebugInformationFormat.PortablePdb), cancellationToken: cancellationToken);
        var errors = emit.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(Format).ToList();
        if (!emit.Success)
        {
            return new CompileOutcome([], errors);
        }

        image.Position = 0;
        symbols.Position = 0;
        var context = new AssemblyLoadContext("weft-definitions", isCollectible: true);
        try
        {
            var assembly = context.LoadFromStream(image, symbols);
            var catalog = new DefinitionCatalog();
            var modules = assembly.GetTypes()
                .Where(t => t.IsClass && !t.IsAbstract && typeof(IDefinitionModule).IsAssignableFrom(t))
                .OrderBy(t => t.FullName, StringComparer.Ordinal)
                .ToList();
            if (modules.Count == 0)
            {
                return new CompileOutcome([], ["no class implements Weft.Definitions.IDefinitionModule"]);
            }

            var failed = new List<string>();
            foreach (var type in modules)
            {
                try
                {
                    ((IDefinitionModule)Activator.CreateInstance(type)!).Define(catalog);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // The module is the user's code: whatever it throws is a problem in the definitions, reported, not a crash.
                    // Unwrapped to what the definition threw: a static constructor's exception comes inside a TypeInitializationException.
                    var cause = ex;
                    while (cause is TargetInvocationException or TypeInitializationException && cause.InnerException is { } inner)
                    {
                        cause = inner;
                    }

                    failed.Add($"{WhereThrown(cause, assembly)}{type.FullName}.Define failed: {cause.GetType().Name}: {cause.Message}");
                }
            }

            if (failed.Count > 0)
            {
                return new CompileOutcome([], failed);
            }

            var registry = ExecutorRegistry.CreateDefault();
            IReadOnlyList<SignalDefinition> signals;
            try
            {
                signals = catalog.Build(registry.Contains);
            }
            catch (DefinitionException ex)
            {
                return new CompileOutcome([], ex.Problems.Select(p => Located(catalog, p.ToString())).ToList());
            }

            var refused = signals.SelectMany(s => RuntimeProblems(s, registry).Select(p => Located(catalog, $"signal '{s.Name}' {p}"))).ToList();
            return refused.Count > 0 ? new CompileOutcome([], refused) : new CompileOutcome(signals, []);
        }
        finally
        {
            context.Unload();
        }
    }

    /// <summary>
    /// What every runtime refuses when it compiles the signal and the JSON rules cannot see: a custom
    /// step's arguments, the column it reads, the columns it says it adds. Without this, validate and
    /// compile said "ok" to a signal each batch and stream run then refused.
    /// </summary>
    internal static IReadOnlyList<DefinitionProblem> RuntimeProblems(SignalDefinition signal, ExecutorRegistry registry)
    {
        // No rows: the enrichment tables only have to exist for the chains to compile.
        var tables = signal.EnrichmentSources.ToDictionary(s => s.Name, s => EnrichmentTable.Build(s, EventBatch.Empty(EnrichmentTable.RowSchema(s))), StringComparer.Ordinal);
        try
        {
            CompiledSignal.Compile(signal, registry, tables);
            return [];
        }
        catch (DefinitionException ex)
        {
            return ex.Problems;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            // A rule the JSON reader does not know yet: still the signal's problem, said as one, not a crash.
            return [new DefinitionProblem("$", $"the signal cannot be compiled: {ex.Message}")];
        }
    }

    /// <summary>"file(line,col): " of the innermost frame in the definitions that threw, or nothing when none is.</summary>
    private static string WhereThrown(Exception cause, Assembly definitions)
    {
        foreach (var frame in new System.Diagnostics.StackTrace(cause, fNeedFileInfo: true).GetFrames())
        {
            if (frame.GetMethod()?.Module.Assembly == definitions && frame.GetFileName() is { } file)
            {
                return $"{file}({frame.GetFileLineNumber()},{frame.GetFileColumnNumber()}): ";
            }
        }

        return "";
    }

    /// <summary>
    /// A problem of a signal, prefixed with where the signal is declared (<c>file(line): </c>, as
    /// Roslyn's own errors are), so a folder of many files says which one to open; a signal declared
    /// twice names every place.
    /// </summary>
    private static string Located(DefinitionCatalog catalog, string problem)
    {
        const string prefix = "signal '";
        if (!problem.StartsWith(prefix, StringComparison.Ordinal) || problem.IndexOf('\'', prefix.Length) is not (> 0 and var end))
        {
            return problem;
        }

        var places = catalog.WhereDeclared(problem[prefix.Length..end]);
        return places.Count switch
        {
            0 => problem,
            1 => $"{places[0]}: {problem}",
            _ => $"{places[0]}: {problem} (at {string.Join(" and ", places)})",
        };
    }

    private static string Format(Diagnostic d)
    {
        var span = d.Location.GetLineSpan();
        return $"{span.Path}({span.StartLinePosition.Line + 1},{span.StartLinePosition.Character + 1}): {d.Id}: {d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)}";
    }

    private static List<MetadataReference> References()
    {
        var refs = new List<MetadataReference>();
        var tpa = (string?)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") ?? "";
        foreach (var path in tpa.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var name = Path.GetFileNameWithoutExtension(path);
            if (name.StartsWith("System.", StringComparison.Ordinal) || name is "System" or "mscorlib" or "netstandard" or "Weft.Definitions")
            {
                refs.Add(MetadataReference.CreateFromFile(path));
            }
        }

        if (!refs.Any(r => r.Display?.EndsWith("Weft.Definitions.dll", StringComparison.Ordinal) == true))
        {
            refs.Add(MetadataReference.CreateFromFile(typeof(IDefinitionModule).Assembly.Location));
        }

        return refs;
    }

    /// <summary>Writes one canonical JSON file per signal and its SHA-256 beside it (sha256sum format).</summary>
    public static async Task<IReadOnlyList<(string File, string Fingerprint)>> WriteAsync(IReadOnlyList<SignalDefinition> signals, string outDir, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(outDir);
        var written = new List<(string, string)>();
        foreach (var s in signals.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            var bytes = SignalJsonWriter.Write(s);
            var fingerprint = SignalJsonWriter.Fingerprint(bytes);
            var file = Path.Combine(outDir, s.Name + ".json");
            await ReplaceAsync(file, bytes, cancellationToken).ConfigureAwait(false);
            await ReplaceAsync(file + ".sha256", System.Text.Encoding.UTF8.GetBytes($"{fingerprint}  {s.Name}.json\n"), cancellationToken).ConfigureAwait(false);
            written.Add((file, fingerprint));
        }

        return written;
    }

    /// <summary>
    /// Writes a file whole or not at all (a rename over it): <c>--out</c> is often the folder a running
    /// <c>weft serve</c> or a starting <c>weft batch</c> reads, which must never see half a definition.
    /// </summary>
    public static async Task ReplaceAsync(string file, byte[] bytes, CancellationToken cancellationToken)
    {
        string temp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, $".{Path.GetFileName(file)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await File.WriteAllBytesAsync(temp, bytes, cancellationToken).ConfigureAwait(false);
            File.Move(temp, file, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
