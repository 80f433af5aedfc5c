using Weft.Engine;
using Weft.Parquet;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>Writes rows as one plain Parquet file (no table log), the form other tools and pipelines exchange.</summary>
public static class ParquetExport
{
    private const int RowsPerGroup = 64 * 1024;

    /// <summary>
    /// Writes <paramref name="rows"/> to <paramref name="path"/> in row groups of up to 65,536 rows,
    /// through a temporary file renamed into place, so a reader never sees half a file.
    /// </summary>
    public static async Task WriteAsync(string path, EventBatch rows, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(rows);
        var schema = ColumnConversions.ToParquetSchema(rows.Schema);
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { Length: > 0 } folder)
        {
            Directory.CreateDirectory(folder);
        }

        string temporary = path + $".tmp-{Guid.NewGuid():N}";
        try
        {
            var writer = await ParquetFileWriter.CreateAsync(temporary, schema, cancellationToken: cancellationToken).ConfigureAwait(false);
            await using (writer.ConfigureAwait(false))
            {
                for (int start = 0; start < rows.RowCount; start += RowsPerGroup)
                {
                    var part = rows.Slice(start, Math.Min(RowsPerGroup, rows.RowCount - start));
                    var columns = new ParquetColumnData[schema.Fields.Count];
                    for (int c = 0; c < columns.Length; c++)
                    {
                        columns[c] = ColumnConversions.ToParquet(part.Columns[c], schema.Fields[c]);
                    }

                    await writer.WriteRowGroupAsync(columns, cancellationToken).ConfigureAwait(false);
                }
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
