using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>The dedup window's table against a set and a queue, on keys that crowd into a few slots.</summary>
public sealed class KeyWindowTests
{
    [Fact]
    public void Answers_as_a_set_with_a_first_in_first_out_queue_does()
    {
        // Low halves in 0..2: every key's home is one of three slots, so probe runs are long, wrap
        // around the table's end, and evictions shift keys back across them.
        var adds = Gen.Choose(1, 60).Select(id => new UInt128((ulong)id, (ulong)(id % 3))).ArrayOf();
        var property = Prop.ForAll(adds.ToArbitrary(), Gen.Choose(1, 24).ToArbitrary(), (keys, capacity) =>
        {
            var window = new KeyWindow(capacity);
            var set = new HashSet<UInt128>();
            var order = new Queue<UInt128>();
            foreach (var key in keys)
            {
                bool added = set.Add(key);
                if (added)
                {
                    order.Enqueue(key);
                    if (order.Count > capacity)
                    {
                        set.Remove(order.Dequeue());
                    }
                }

                window.Add(key).Should().Be(added, $"adding {key} with capacity {capacity}");
                window.Count.Should().Be(set.Count);
                var probe = new UInt128((ulong)((key.GetHashCode() & 63) + 1), (ulong)(key.GetHashCode() & 3) % 3);
                window.Contains(probe).Should().Be(set.Contains(probe), $"asking for {probe} with capacity {capacity}");
                window.Contains(key).Should().BeTrue();
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(3_000).WithReplay(0x4B1D, 0x7), property);
    }

    [Fact]
    public void Holds_a_long_window_across_growth()
    {
        var window = new KeyWindow(capacity: 50_000);
        for (ulong k = 1; k <= 60_000; k++)
        {
            window.Add(Key(k)).Should().BeTrue();
        }

        window.Count.Should().Be(50_000);
        window.Add(Key(60_000)).Should().BeFalse("the newest key is held");
        window.Add(Key(10_001)).Should().BeFalse("the window starts at key 10,001");
        window.Add(Key(10_000)).Should().BeTrue("key 10,000 left the window");

        // Keys spread like hashes: the low half scrambled.
        static UInt128 Key(ulong k) => new(k, unchecked(k * 0x9E3779B97F4A7C15));
    }
}
