namespace Weft.Parquet.Tests;

public sealed class WriterValidationTests
{
    private static readonly ParquetField Ints = new("i", ParquetType.Int32, Nullable: false);
    private static readonly ParquetField Tags = new("tags", ParquetType.String, Nullable: true, IsList: true);

    [Fact]
    public void Column_factories_reject_data_that_does_not_fit_the_field()
    {
        FluentActions.Invoking(() => ParquetColumnData.Create(Ints, new long[3]))
            .Should().Throw<ArgumentException>().WithMessage("*'i'*Int32[]*Int64[]*");
        FluentActions.Invoking(() => ParquetColumnData.Create(Ints, new int[3], [false, true, false]))
            .Should().Throw<ArgumentException>().WithMessage("*'i' is not nullable*row 1*");
        FluentActions.Invoking(() => ParquetColumnData.Create(Ints, new int[3], [false]))
            .Should().Throw<ArgumentException>().WithMessage("*1 null flags for 3 rows*");
        FluentActions.Invoking(() => ParquetColumnData.Create(Tags, new[] { "a" }, offsets: [0, 2]))
            .Should().Throw<ArgumentException>().WithMessage("*end at the element count 1*");
        FluentActions.Invoking(() => ParquetColumnData.Create(Tags, new[] { "a", "b" }, offsets: [0, 2, 1, 2]))
            .Should().Throw<ArgumentException>().WithMessage("*decrease at row 1*");
        FluentActions.Invoking(() => ParquetColumnData.Create(Tags, new[] { "a" }, [true], [0, 1]))
            .Should().Throw<ArgumentException>().WithMessage("*null row 0 has elements*");
        FluentActions.Invoking(() => ParquetColumnData.Create(Tags, new string?[] { null }, offsets: [0, 1]))
            .Should().Throw<ArgumentException>().WithMessage("*element 0 is null*");
        FluentActions.Invoking(() => ParquetColumnData.Create(new ParquetField("s", ParquetType.String, false), new string?[] { "a", null }))
            .Should().Throw<ArgumentException>().WithMessage("*row 1 holds a null string*");
    }

    [Fact]
    public void Options_and_schemas_are_validated_with_the_offending_name_and_value()
    {
        FluentActions.Invoking(() => new ParquetWriterOptions { DataPageSize = 0 }.Validate())
            .Should().Throw<ArgumentOutOfRangeException>().WithMessage("*DataPageSize = 0*");
        FluentActions.Invoking(() => new ParquetWriterOptions { MaxDictionarySize = -5 }.Validate())
            .Should().Throw<ArgumentOutOfRangeException>().WithMessage("*MaxDictionarySize = -5*");
        FluentActions.Invoking(() => new ParquetSchema([Ints, Ints]))
            .Should().Throw<ArgumentException>().WithMessage("*'i' appears more than once*");
        FluentActions.Invoking(() => new ParquetSchema([]))
            .Should().Throw<ArgumentException>();
    }

    [Fact]
    public async Task A_row_group_that_does_not_match_the_schema_is_rejected_and_the_writer_stays_usable()
    {
        using var stream = new MemoryStream();
        var schema = new ParquetSchema([Ints, Tags]);
        await using var writer = await ParquetFileWriter.CreateAsync(stream, schema);
        var ints = ParquetColumnData.FromValues(Ints, new[] { 1, 2 });
        var tags = ParquetColumnData.FromLists<string>(Tags, [["x"], null]);

        await FluentActions.Awaiting(() => writer.WriteRowGroupAsync([ints]))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*1 columns*schema has 2*");
        await FluentActions.Awaiting(() => writer.WriteRowGroupAsync([tags, ints]))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*Column 0*");
        await FluentActions.Awaiting(() => writer.WriteRowGroupAsync([ParquetColumnData.FromValues(Ints, new[] { 1 }), tags]))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*'tags' has 2 rows*'i' has 1*");
        var badUtf16 = ParquetColumnData.FromLists<string>(Tags, [["ok", "\uD800"], null]);
        await FluentActions.Awaiting(() => writer.WriteRowGroupAsync([ints, badUtf16]))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*'tags'*value 1*unpaired surrogate*");

        await writer.WriteRowGroupAsync([ints, tags]);
        await writer.CompleteAsync();
        await FluentActions.Awaiting(() => writer.WriteRowGroupAsync([ints, tags]))
            .Should().ThrowAsync<InvalidOperationException>().WithMessage("*complete*");

        await using var reader = await TestColumns.OpenAsync(stream.ToArray());
        reader.RowCount.Should().Be(2);
    }

    [Fact]
    public async Task A_failed_write_faults_the_writer_and_no_footer_is_written()
    {
        using var inner = new MemoryStream();
        await using var failing = new FailingStream(inner, failAfterBytes: 10);
        var writer = await ParquetFileWriter.CreateAsync(failing, new ParquetSchema([Ints]));
        var column = ParquetColumnData.FromValues(Ints, Enumerable.Range(0, 1000).ToArray());

        await FluentActions.Awaiting(() => writer.WriteRowGroupAsync([column])).Should().ThrowAsync<IOException>();
        await FluentActions.Awaiting(() => writer.WriteRowGroupAsync([column]))
            .Should().ThrowAsync<InvalidOperationException>().WithMessage("*incomplete*");
        await writer.DisposeAsync();

        inner.Length.Should().Be(4, "only the leading magic made it out");
    }

    private sealed class FailingStream(Stream inner, long failAfterBytes) : Stream
    {
        private long _written;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _written; set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (_written + count > failAfterBytes)
            {
                throw new IOException("disk full (test)");
            }

            inner.Write(buffer, offset, count);
            _written += count;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.ToArray(), 0, buffer.Length);
            return ValueTask.CompletedTask;
        }
    }
}
