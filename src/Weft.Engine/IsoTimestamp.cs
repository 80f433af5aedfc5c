using Weft.Definitions;

namespace Weft.Engine;

/// <summary>
/// The common shape of event timestamps, read straight from UTF-8: <c>yyyy-MM-ddTHH:mm:ss</c>, an
/// optional fraction of 1–7 digits, then <c>Z</c> or <c>±HH:mm</c>. Anything else (other separators,
/// more digits, a leap second, no zone) is declined, and the caller falls back to
/// <see cref="DateTimeOffset.TryParse(ReadOnlySpan{char}, IFormatProvider?, System.Globalization.DateTimeStyles, out DateTimeOffset)"/>,
/// whose answer this one always equals where it answers (a differential test holds it to that).
/// The general parser tokenises and looks up culture data per call: a fifth of parsing an event.
/// </summary>
internal static class IsoTimestamp
{
    private const int MinLength = 20; // 2026-11-30T00:00:00Z
    private const int MaxLength = 19 + 8 + 6; // + .fffffff + +HH:mm

    /// <summary>True with the instant's microseconds (as <see cref="Timestamps.ToMicros"/>) when <paramref name="utf8"/> has the common shape.</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, out long micros)
    {
        micros = 0;
        if (utf8.Length is < MinLength or > MaxLength
            || utf8[4] != '-' || utf8[7] != '-' || utf8[10] != 'T' || utf8[13] != ':' || utf8[16] != ':'
            || !Digits(utf8, 0, 4, out int year) || !Digits(utf8, 5, 2, out int month) || !Digits(utf8, 8, 2, out int day)
            || !Digits(utf8, 11, 2, out int hour) || !Digits(utf8, 14, 2, out int minute) || !Digits(utf8, 17, 2, out int second)
            || year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month)
            || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        int i = 19;
        long fractionTicks = 0;
        if (utf8[i] == '.')
        {
            int start = ++i;
            while (i < utf8.Length && (uint)(utf8[i] - '0') <= 9)
            {
                fractionTicks = (fractionTicks * 10) + (utf8[i] - '0');
                i++;
            }

            int digits = i - start;
            if (digits is < 1 or > 7)
            {
                return false;
            }

            for (; digits < 7; digits++)
            {
                fractionTicks *= 10;
            }
        }

        long offsetTicks;
        if (i == utf8.Length - 1 && utf8[i] == 'Z')
        {
            offsetTicks = 0;
        }
        else if (i == utf8.Length - 6 && utf8[i] is (byte)'+' or (byte)'-' && utf8[i + 3] == ':'
            && Digits(utf8, i + 1, 2, out int offsetHours) && Digits(utf8, i + 4, 2, out int offsetMinutes)
            && offsetMinutes <= 59 && (offsetHours * 60) + offsetMinutes <= 14 * 60)
        {
            offsetTicks = ((offsetHours * 60L) + offsetMinutes) * TimeSpan.TicksPerMinute * (utf8[i] == '-' ? -1 : 1);
        }
        else
        {
            return false;
        }

        long localTicks = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Unspecified).Ticks + fractionTicks;
        long utcTicks = localTicks - offsetTicks;
        if (utcTicks < DateTime.MinValue.Ticks || utcTicks > DateTime.MaxValue.Ticks)
        {
            return false; // out of range in UTC: the general parser decides
        }

        micros = Timestamps.ToMicros(new DateTimeOffset(utcTicks, TimeSpan.Zero));
        return true;
    }

    /// <summary>
    /// Any other ISO-8601 text (a date, or a date and time with an optional fraction and offset; UTC
    /// without one), as <see cref="Timestamps.TryParseInstant"/> reads it: text that does not start with
    /// <c>yyyy-MM-dd</c> is declined before the general parser sees it, since that parser completes a
    /// time alone (<c>"12:30"</c>) with today's date and a day without a year (<c>"Jan 5"</c>) with this
    /// year's, from the wall clock: the stream and a batch run on another day read one event differently.
    /// </summary>
    public static bool TryParseGeneral(ReadOnlySpan<char> text, out long micros)
    {
        micros = 0;
        text = text.Trim(); // white space around the text, which the general parser skips (a space after a CSV comma)
        if (text.Length is < 10 or > 40 || !AsciiDigits(text[..4]) || text[4] != '-' || !AsciiDigits(text.Slice(5, 2)) || text[7] != '-' || !AsciiDigits(text.Slice(8, 2))
            || (text.Length > 10 && text[10] is not ('T' or 't' or ' '))
            || !DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out var value))
        {
            return false;
        }

        micros = Timestamps.ToMicros(value);
        return true;

        static bool AsciiDigits(ReadOnlySpan<char> s) => !s.ContainsAnyExceptInRange('0', '9');
    }

    private static bool Digits(ReadOnlySpan<byte> utf8, int start, int count, out int value)
    {
        value = 0;
        for (int k = start; k < start + count; k++)
        {
            uint d = (uint)(utf8[k] - '0');
            if (d > 9)
            {
                return false;
            }

            value = (value * 10) + (int)d;
        }

        return true;
    }
}
