namespace Weft.Engine;

/// <summary>
/// Per-row failures found while evaluating a batch (a failed cast, an overflow). Expected bad input is
/// a result, not an exception: the executor drops the row and reports it with this reason.
/// </summary>
public sealed class RowErrors
{
    private readonly List<(int Row, string Reason)> _errors = [];
    private bool[]? _mask;
    private readonly int _rowCount;

    public RowErrors(int rowCount) => _rowCount = rowCount;

    public int Count => _errors.Count;

    public IReadOnlyList<(int Row, string Reason)> Errors => _errors;

    public void Add(int row, string reason)
    {
        _mask ??= new bool[_rowCount];
        if (!_mask[row])
        {
            _mask[row] = true;
            _errors.Add((row, reason));
        }
    }

    public bool Has(int row) => _mask is not null && _mask[row];

    /// <summary>Adds the failures of <paramref name="other"/> (a part evaluated on its own) on the rows <paramref name="counts"/> says it decides.</summary>
    public void AddFrom(RowErrors other, Func<int, bool> counts)
    {
        foreach (var (row, reason) in other._errors)
        {
            if (counts(row))
            {
                Add(row, reason);
            }
        }
    }
}
