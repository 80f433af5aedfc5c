using System.Security.Cryptography;
using System.Text;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>
/// A signal ready to run from a <c>weft.json</c>: its definition, its enrichment tables loaded (every
/// version, so a run can ask for "latest corrected" or "as known at"), compiled. Shared by every
/// runtime so that all of them load the same way.
/// </summary>
public sealed class SignalEnvironment
{
    private SignalEnvironment(WeftConfig config, CompiledSignal signal, IReadOnlyDictionary<string, EnrichmentTable> enrichments, string inputsFingerprint)
    {
        Config = config;
        Signal = signal;
        Enrichments = enrichments;
        EnrichmentFingerprint = inputsFingerprint;
    }

    public WeftConfig Config { get; }

    public CompiledSignal Signal { get; }

    public SignalDefinition Definition => Signal.Definition;

    public IReadOnlyDictionary<string, EnrichmentTable> Enrichments { get; }

    /// <summary>Identifies the enrichment inputs (table versions or file sizes and times).</summary>
    public string EnrichmentFingerprint { get; }

    /// <summary>
    /// The signal's definition, after checking that the config names a table for each of its enrichment
    /// sources: cheap, so a command can fail on a config mistake before it opens a source or a store.
    /// </summary>
    /// <exception cref="InputException">An enrichment source has no entry in <c>$.enrichments</c>.</exception>
    public static SignalDefinition CheckConfigured(WeftConfig config, string signalName, ExecutorRegistry? registry = null)
    {
        registry ??= ExecutorRegistry.CreateDefault();
        var definition = config.LoadSignal(signalName, registry.Contains);
        CheckEnrichmentsConfigured(config, definition);
        return definition;
    }

    private static void CheckEnrichmentsConfigured(WeftConfig config, SignalDefinition definition)
    {
        foreach (var source in definition.EnrichmentSources)
        {
            if (!config.Enrichments.ContainsKey(source.Name))
            {
                throw new InputException($"{config.ConfigPath}: signal '{definition.Name}' enriches from '{source.Name}', but $.enrichments has no table for it");
            }
        }
    }

    public static async Task<SignalEnvironment> LoadAsync(WeftConfig config, string signalName, ExecutorRegistry? registry = null, CancellationToken cancellationToken = default)
    {
        registry ??= ExecutorRegistry.CreateDefault();
        return await LoadAsync(config, CheckConfigured(config, signalName, registry), registry, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <paramref name="definition"/> with its enrichment tables read as they are now: what a running
    /// process reloads when the tables change (it keeps the definition it started with; the file in
    /// <c>signals</c> may have been replaced by a deployment meant for the next start), and what a
    /// process that has read every signal file once opens, so all its parts run one definition.
    /// </summary>
    public static async Task<SignalEnvironment> LoadAsync(WeftConfig config, SignalDefinition definition, ExecutorRegistry? registry = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(definition);
        registry ??= ExecutorRegistry.CreateDefault();
        CheckEnrichmentsConfigured(config, definition);
        var tables = new Dictionary<string, EnrichmentTable>(StringComparer.Ordinal);
        var fingerprint = new StringBuilder();
        foreach (var source in definition.EnrichmentSources)
        {
            var location = config.Enrichments[source.Name];
            var (rows, bad) = await TableInputs.ReadEnrichmentAsync(location, EnrichmentTable.RowSchema(source), cancellationToken).ConfigureAwait(false);
            if (bad.Count > 0)
            {
                throw new InputException($"enrichment table '{location.Path}' has {bad.Count} bad row(s), e.g. {TableInputs.Describe(bad[0])}");
            }

            tables[source.Name] = EnrichmentTable.Build(source, rows);
            fingerprint.Append(source.Name).Append('=').Append(await InputFingerprintAsync(location, cancellationToken).ConfigureAwait(false)).Append(';');
        }

        var compiled = CompiledSignal.Compile(definition, registry, tables);
        return new SignalEnvironment(config, compiled, tables, fingerprint.ToString());
    }

    /// <summary>
    /// What identifies an input's content cheaply: a Delta table's id and version, or the names (within
    /// the folder), sizes and modification times of a folder's files.
    /// A re-run over the same fingerprint is a resume. Nothing in it is where the input sits: the shards
    /// of one job on hosts that mount the lake at different paths, or a deployment moved, name one run.
    /// </summary>
    public static async Task<string> InputFingerprintAsync(TableLocation location, CancellationToken cancellationToken)
    {
        TableInputs.EnsureExists(location);
        if (location.Format == TableFormat.Delta)
        {
            var table = await DeltaTable.OpenAsync(location.Path, cancellationToken: cancellationToken).ConfigureAwait(false);
            var snapshot = await table.GetSnapshotAsync(cancellationToken).ConfigureAwait(false);
            return $"delta:{snapshot.TableId}@v{snapshot.Version}";
        }

        var files = File.Exists(location.Path)
            ? [location.Path]
            : Directory.Exists(location.Path) ? Directory.EnumerateFiles(location.Path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray() : [];
        var text = new StringBuilder();
        foreach (var f in files)
        {
            var info = new FileInfo(f);
            string name = f == location.Path ? Path.GetFileName(f) : Path.GetRelativePath(location.Path, f).Replace('\\', '/');
            text.Append(name).Append(':').Append(info.Length).Append(':').Append(info.LastWriteTimeUtc.Ticks).Append('\n');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..16];
    }
}
