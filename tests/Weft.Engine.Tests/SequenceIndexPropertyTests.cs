using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Definitions;
using Weft.Engine.Sequences;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// <see cref="SequenceIndex"/> (the one cut serving, snapshots and training sets share) against the
/// documented cut written plainly: rows the merge admits, with event_time in (as_of − lookback, as_of]
/// and ingest_time ≤ known_at; per event_id the newest event_time, and of its copies the one the merge
/// policy prefers (the earliest row on a tie); newest first, event_id ascending (ordinal); the first
/// max_length, truncated when more passed. Times, ids and ingest times come from small ranges, so ties,
/// copies on both paths, re-sends at other times and every edge of the cut are common.
/// </summary>
public sealed class SequenceIndexPropertyTests
{
    private sealed record Row(long User, long Time, string Id, long Ingest, bool FromBatch, bool Admitted);

    private static readonly string[] Ids = ["a", "b", "c", "é", "\uE000", "\U0001F600"];

    private static readonly Gen<Row> Rows =
        from user in Gen.Choose(1, 3)
        from time in Gen.Choose(0, 6)
        from id in Gen.Elements(Ids)
        from ingest in Gen.Choose(0, 7)
        from fromBatch in Gen.Elements(true, false)
        from admitted in Gen.Frequency((6, Gen.Constant(true)), (1, Gen.Constant(false)))
        select new Row(user, time, id, ingest, fromBatch, admitted);

    private static readonly Gen<(long AsOf, long KnownAt, long Lookback, int Max)> Cuts =
        from asOf in Gen.Choose(-1, 7)
        from knownAt in Gen.Choose(-1, 8)
        from lookback in Gen.Choose(1, 8)
        from max in Gen.Choose(1, 4)
        select ((long)asOf, (long)knownAt, (long)lookback, max);

    [Fact]
    public void Select_equals_the_documented_cut_under_both_merge_policies()
    {
        var property = Prop.ForAll(Rows.ArrayOf().ToArbitrary(), Cuts.ToArbitrary(), Gen.Elements(MergePolicyKind.BatchSealsStreamFills, MergePolicyKind.LastWriteWins).ToArbitrary(), (rows, cut, policy) =>
        {
            var index = SequenceIndex.Build(
                [.. rows.Select(r => r.User)], [.. rows.Select(r => r.Time)], [.. rows.Select(r => r.Ingest)], [.. rows.Select(r => (string?)r.Id)],
                policy, [.. rows.Select(r => r.FromBatch)], [.. rows.Select(r => r.Admitted)], rows.Length);
            var sequenceCut = new SequenceCut(cut.AsOf, cut.KnownAt, cut.Lookback, cut.Max);
            for (long user = 1; user <= 3; user++)
            {
                var (expected, truncated) = Model(rows, user, cut.AsOf, cut.KnownAt, cut.Lookback, cut.Max, policy);
                int g = index.FindUser(user);
                var picked = new List<int>();
                bool cutShort = g >= 0 && index.Select(g, sequenceCut, picked);
                picked.Should().Equal(expected, $"user {user}, as of {cut.AsOf}, known at {cut.KnownAt}, lookback {cut.Lookback}, max {cut.Max}, {policy}");
                cutShort.Should().Be(truncated);
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(3_000).WithReplay(0x5E9, 0x1D), property);
    }

    private static (List<int> Rows, bool Truncated) Model(Row[] rows, long user, long asOf, long knownAt, long lookback, int max, MergePolicyKind policy)
    {
        var candidates = Enumerable.Range(0, rows.Length)
            .Where(i => rows[i].Admitted && rows[i].User == user && rows[i].Time <= asOf && rows[i].Time > asOf - lookback && rows[i].Ingest <= knownAt).ToList();
        var chosen = candidates.GroupBy(i => rows[i].Id).Select(copies =>
        {
            long newest = copies.Max(i => rows[i].Time);
            int best = -1;
            foreach (int i in copies.Where(i => rows[i].Time == newest).Order())
            {
                // Strictly preferred over the one held: a tie keeps the earlier row.
                if (best < 0 || (Prefers(i, best) && !Prefers(best, i)))
                {
                    best = i;
                }
            }

            return best;
        }).OrderByDescending(i => rows[i].Time).ThenBy(i => rows[i].Id, StringComparer.Ordinal).ToList();
        return ([.. chosen.Take(max)], chosen.Count > max);

        bool Prefers(int a, int b) => MergePolicy.PrefersOver(policy, rows[a].FromBatch, rows[a].Ingest, rows[b].FromBatch, rows[b].Ingest);
    }
}
