namespace Weft.Storage;

/// <summary>
/// Data files staged by <see cref="EventTable.StageAsync"/> as text another process can read back: the
/// Delta log's own <c>add</c> action lines, so a staged set is exactly what its commit will record.
/// </summary>
public static class StagedFiles
{
    public static byte[] Serialize(IReadOnlyList<AddFile> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var actions = new List<DeltaAction>(files.Count);
        foreach (var file in files)
        {
            actions.Add(TableState.ToAddAction(file, file.PartitionValues, file.DataChange));
        }

        return DeltaActionCodec.Serialize(actions);
    }

    /// <summary>Reads what <see cref="Serialize"/> wrote; anything else fails with <see cref="FormatException"/> naming <paramref name="source"/>.</summary>
    public static IReadOnlyList<AddFile> Parse(ReadOnlySpan<byte> content, string source)
    {
        List<DeltaAction> actions;
        try
        {
            actions = DeltaActionCodec.Parse(content);
        }
        catch (FormatException e)
        {
            throw new FormatException($"Staged file list '{source}' is malformed: {e.Message}", e);
        }

        var files = new List<AddFile>(actions.Count);
        foreach (var action in actions)
        {
            files.Add(action is AddAction add
                ? TableState.ToAddFile(add)
                : throw new FormatException($"Staged file list '{source}' holds a {action.GetType().Name}, not only add actions."));
        }

        return files;
    }
}
