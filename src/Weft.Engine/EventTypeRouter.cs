using System.Collections.Immutable;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>
/// Sends each event through the executor chain of its event type and gathers the results onto one
/// schema. Events of a type the signal does not include are not for this signal and pass silently.
/// </summary>
public sealed class EventTypeRouter : IEventExecutor
{
    private readonly Dictionary<string, Chain> _chains;
    private readonly ImmutableArray<FieldDefinition> _output;
    private readonly RecoveryOptions _recovery;

    internal EventTypeRouter(IEnumerable<Chain> chains, ImmutableArray<FieldDefinition> output, RecoveryOptions recovery)
    {
        _chains = chains.ToDictionary(c => c.EventType, StringComparer.Ordinal);
        _output = output;
        _recovery = recovery;
    }

    internal sealed record Chain(string EventType, ImmutableArray<FieldDefinition> Input, IReadOnlyList<(string Stage, IEventExecutor Executor)> Steps);

    public string Name => "event_types";

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => _output;

    public async ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
    {
        var types = (StringColumn)batch[StandardColumns.EventType];
        var rowsByType = new Dictionary<string, List<int>>(StringComparer.Ordinal);

        // The parser hands out a few instances per type name, so most rows find theirs by reference
        // among the last few seen instead of hashing the name.
        const int Seen = 8;
        var seenTypes = new string?[Seen];
        var seenRows = new List<int>?[Seen];
        int next = 0;
        for (int i = 0; i < batch.RowCount; i++)
        {
            string type = types.Values[i]!;
            int s = 0;
            while (s < Seen && !ReferenceEquals(seenTypes[s], type))
            {
                s++;
            }

            List<int>? rows;
            if (s < Seen)
            {
                rows = seenRows[s];
            }
            else
            {
                if (!rowsByType.TryGetValue(type, out rows) && _chains.ContainsKey(type))
                {
                    rows = rowsByType[type] = [];
                }

                (seenTypes[next], seenRows[next]) = (type, rows);
                next = (next + 1) % Seen;
            }

            rows?.Add(i);
        }

        var parts = new List<EventBatch>(rowsByType.Count);
        // Ordinal order of types keeps the output deterministic whatever the input order.
        foreach (var type in rowsByType.Keys.Order(StringComparer.Ordinal))
        {
            var chain = _chains[type];
            var rows = rowsByType[type];
            var part = (rows.Count == batch.RowCount ? batch : batch.GatherView([.. rows])).Project(chain.Input);
            foreach (var (stage, step) in chain.Steps)
            {
                part = await StageRunner.ExecuteAsync(step, stage, part, context, _recovery, cancellationToken).ConfigureAwait(false);
                if (part.RowCount == 0)
                {
                    break;
                }
            }

            if (part.RowCount > 0)
            {
                parts.Add(Conform(part));
            }
        }

        return parts.Count == 0 ? EventBatch.Empty(_output) : EventBatch.Concat(_output, parts);
    }

    /// <summary>Widens integer key columns where event types disagree (int32 in one, int64 in another).</summary>
    private EventBatch Conform(EventBatch part)
    {
        var result = part;
        foreach (var f in _output)
        {
            if (part.TryGetColumn(f.Name, out var c) && c.Type != f.Type)
            {
                result = result.WithColumn(f, ExpressionCompiler.Conform(c, f.Type, new RowErrors(c.Length)));
            }
        }

        return result;
    }
}
