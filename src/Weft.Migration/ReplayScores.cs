using System.Collections.Immutable;
using System.Globalization;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;

namespace Weft.Migration;

/// <summary>
/// A consuming model's scores from an offline replay: one row per example, a key naming the example
/// (the same key in both replays) and the model's score. Parquet, CSV or JSON lines, by extension.
/// </summary>
public static class ReplayScores
{
    /// <summary>The scores by key; a repeated key, a missing or non-finite score fails naming the file and the key.</summary>
    public static async Task<IReadOnlyDictionary<string, double>> ReadAsync(string path, string keyColumn, string scoreColumn, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var location = new TableLocation(Path.GetFullPath(path), TableInputs.FormatOfFile(path)
            ?? throw new MigrationInputException($"scores '{path}': unknown format; use a .parquet, .csv or .jsonl file"));
        EventBatch rows;
        try
        {
            var names = await TableInputs.ColumnNamesAsync(location, cancellationToken).ConfigureAwait(false);
            if (names.Count == 0)
            {
                // A CSV or JSON lines file names its columns by its rows: with none, "no column 'example_id'" blamed a header that names it.
                throw new MigrationInputException($"scores '{path}' hold no rows (a header at most): no example was scored");
            }

            foreach (var column in (string[])[keyColumn, scoreColumn])
            {
                if (!names.Contains(column))
                {
                    throw new MigrationInputException($"scores '{path}' have no column '{column}' (they have: {string.Join(", ", names.Order(StringComparer.Ordinal))}); name it with --key / --score");
                }
            }

            // Keys are compared as text; a file whose keys are numbers is read as such and its keys formatted.
            rows = await ReadAsync(location, keyColumn, scoreColumn, WeftType.String, cancellationToken).ConfigureAwait(false)
                ?? await ReadAsync(location, keyColumn, scoreColumn, WeftType.Int64, cancellationToken).ConfigureAwait(false)
                ?? throw new MigrationInputException($"scores '{path}': column '{keyColumn}' holds neither text nor integers, or '{scoreColumn}' is not a number");
        }
        catch (InputException ex)
        {
            throw new MigrationInputException($"scores '{path}': {ex.Message}");
        }

        var scores = new Dictionary<string, double>(rows.RowCount, StringComparer.Ordinal);
        var keys = rows.Columns[0];
        var values = (PrimitiveColumn<double>)rows.Columns[1];
        for (int i = 0; i < rows.RowCount; i++)
        {
            var key = keys.GetValue(i) switch
            {
                string s => s,
                long l => l.ToString(CultureInfo.InvariantCulture),
                _ => throw new MigrationInputException($"scores '{path}': row {i + 1} has no {keyColumn}"),
            };
            if (values.IsNull(i) || !double.IsFinite(values.Values[i]))
            {
                throw new MigrationInputException($"scores '{path}': {keyColumn} '{key}' has no finite {scoreColumn}");
            }

            if (!scores.TryAdd(key, values.Values[i]))
            {
                throw new MigrationInputException($"scores '{path}': {keyColumn} '{key}' is scored twice; a replay scores each example once");
            }
        }

        return scores;
    }

    private static async Task<EventBatch?> ReadAsync(TableLocation location, string keyColumn, string scoreColumn, WeftType keyType, CancellationToken cancellationToken)
    {
        ImmutableArray<FieldDefinition> schema = [new(keyColumn, keyType), new(scoreColumn, WeftType.Float64)];
        try
        {
            var (rows, bad) = await TableInputs.ReadEnrichmentAsync(location, schema, cancellationToken).ConfigureAwait(false);
            if (bad.Count > 0)
            {
                return keyType == WeftType.String && bad.Count == rows.RowCount + bad.Count
                    ? null
                    : throw new MigrationInputException($"scores '{location.Path}': {bad.Count:N0} row(s) cannot be read, e.g. {bad[0].Source}: {bad[0].Reason}");
            }

            return rows;
        }
        catch (InputException) when (keyType == WeftType.String)
        {
            return null; // e.g. a Parquet file whose key column is an integer
        }
    }
}
