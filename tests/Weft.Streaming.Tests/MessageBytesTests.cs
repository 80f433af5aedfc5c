using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Weft.Streaming.Tests;

/// <summary>Records' bytes copied into shared slabs: each copy reads back as its input after every later copy.</summary>
public sealed class MessageBytesTests
{
    [Fact]
    public void Every_copy_keeps_its_bytes_while_later_copies_fill_and_replace_slabs()
    {
        var property = Prop.ForAll(Gen.Choose(0, int.MaxValue).ToArbitrary(), Gen.Choose(1, 400).ToArbitrary(), (seed, count) =>
        {
            var random = new Random(seed);
            var bytes = new MessageBytes();
            var inputs = new List<byte[]>();
            var copies = new List<ReadOnlyMemory<byte>>();
            for (int i = 0; i < count; i++)
            {
                // Mostly message-sized, some empty, some over the own-array limit, some a slab's leftover.
                int length = random.Next(10) switch
                {
                    0 => 0,
                    1 => random.Next(MessageBytes.SlabBytes / 8 - 16, MessageBytes.SlabBytes / 8 + 16),
                    2 => random.Next(MessageBytes.SlabBytes / 8 + 1, MessageBytes.SlabBytes + 10),
                    _ => random.Next(1, 600),
                };
                var input = new byte[length];
                random.NextBytes(input);
                inputs.Add(input);

                // Copied from a buffer the caller overwrites next, as a source's read buffer is.
                var scratch = input.ToArray();
                copies.Add(bytes.Copy(scratch));
                random.NextBytes(scratch);
            }

            for (int i = 0; i < count; i++)
            {
                copies[i].ToArray().Should().Equal(inputs[i], "copy {0} of {1}", i, count);
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300).WithReplay(0xB17E5, 0x1), property);
    }

    [Fact]
    public void Small_copies_share_a_slab_and_large_ones_get_their_own_array()
    {
        var bytes = new MessageBytes();
        var a = bytes.Copy("first"u8);
        var b = bytes.Copy("second"u8);
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(a, out var sa).Should().BeTrue();
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(b, out var sb).Should().BeTrue();
        sb.Array.Should().BeSameAs(sa.Array);
        sb.Offset.Should().Be(sa.Offset + sa.Count);

        var large = new byte[MessageBytes.SlabBytes / 8 + 1];
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(bytes.Copy(large), out var sl).Should().BeTrue();
        sl.Array.Should().NotBeSameAs(sa.Array).And.HaveCount(large.Length);
        bytes.Copy([]).IsEmpty.Should().BeTrue();
    }
}
