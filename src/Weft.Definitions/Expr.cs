using System.Collections.Immutable;

namespace Weft.Definitions;

/// <summary>
/// A portable expression: predicates and derived fields are built from C# with these operators and
/// methods and serialised as a tree in the signal JSON — never as C# source to be re-parsed.
/// </summary>
/// <remarks>
/// <c>==</c> and <c>!=</c> build comparisons, as <see cref="Eq"/> and <see cref="Ne"/> do: test an
/// <see cref="Expr"/> variable for null with <c>is null</c>.
/// Null semantics follow SQL: comparisons and arithmetic with a null operand give null, a filter
/// keeps a row only when its predicate is true, <c>and</c>/<c>or</c> use three-valued logic.
/// </remarks>
public abstract class Expr
{
    private protected Expr()
    {
    }

    public static Expr Col(string name) => new ColumnExpr(name);

    public static Expr Lit(long value) => new LiteralExpr(value, WeftType.Int64);

    /// <exception cref="ArgumentOutOfRangeException">The value is NaN or infinite, which a signal's JSON cannot hold.</exception>
    public static Expr Lit(double value) => double.IsFinite(value)
        ? new LiteralExpr(value, WeftType.Float64)
        : throw new ArgumentOutOfRangeException(nameof(value), value, "a float literal must be a finite number (NaN and infinities have no JSON form); to test for a missing value use IsNull()");

    public static Expr Lit(string value) => new LiteralExpr(value, WeftType.String);

    public static Expr Lit(bool value) => new LiteralExpr(value, WeftType.Bool);

    public static Expr Lit(DateTimeOffset value) => new LiteralExpr(Timestamps.ToMicros(value), WeftType.Timestamp);

    public static Expr Null(WeftType type) => new LiteralExpr(null, type);

    public static Expr If(Expr condition, Expr then, Expr otherwise) => Call("if", condition, then, otherwise);

    public static Expr Coalesce(params Expr[] values) => Call("coalesce", values);

    public static Expr Concat(params Expr[] values) => Call("concat", values);

    /// <summary>True when any condition is (SQL's <c>OR</c> over all of them, one level deep however many).</summary>
    public static Expr Any(params Expr[] conditions) => Combine("or", conditions);

    /// <summary>True when every condition is (SQL's <c>AND</c> over all of them, one level deep however many).</summary>
    public static Expr All(params Expr[] conditions) => Combine("and", conditions);

    private static Expr Combine(string op, Expr[] conditions)
    {
        ArgumentOutOfRangeException.ThrowIfZero(conditions.Length, nameof(conditions));
        return conditions.Length == 1 ? conditions[0] : Call(op, conditions);
    }

    public static implicit operator Expr(long value) => Lit(value);

    public static implicit operator Expr(double value) => Lit(value);

    public static implicit operator Expr(string value) => Lit(value);

    public static implicit operator Expr(bool value) => Lit(value);

    public static Expr operator >(Expr a, Expr b) => Call("gt", a, b);

    public static Expr operator <(Expr a, Expr b) => Call("lt", a, b);

    public static Expr operator >=(Expr a, Expr b) => Call("ge", a, b);

    public static Expr operator <=(Expr a, Expr b) => Call("le", a, b);

    public static Expr operator &(Expr a, Expr b) => Call("and", a, b);

    public static Expr operator |(Expr a, Expr b) => Call("or", a, b);

    public static Expr operator !(Expr a) => Call("not", a);

    public static Expr operator +(Expr a, Expr b) => Call("add", a, b);

    public static Expr operator -(Expr a, Expr b) => Call("sub", a, b);

    public static Expr operator *(Expr a, Expr b) => Call("mul", a, b);

    public static Expr operator /(Expr a, Expr b) => Call("div", a, b);

    public static Expr operator %(Expr a, Expr b) => Call("mod", a, b);

    public static Expr operator -(Expr a) => Call("neg", a);

    /// <summary>
    /// <c>a == b</c> is the expression "a equals b", as <see cref="Eq"/>, not a comparison of two C#
    /// objects: with <c>bool</c>'s reference comparison and the implicit <c>bool</c> literal, a filter
    /// written <c>Col("surface") == "home"</c> compiled to a constant false that dropped every event.
    /// Against <c>null</c> it is <see cref="IsNull"/>. Test an <see cref="Expr"/> variable for null with <c>is null</c>.
    /// </summary>
    public static Expr operator ==(Expr? a, Expr? b) => a is null ? (b is null ? Lit(true) : b.IsNull()) : b is null ? a.IsNull() : Call("eq", a, b);

    /// <summary><c>a != b</c> is the expression "a differs from b", as <see cref="Ne"/>; against <c>null</c>, <see cref="IsNotNull"/>.</summary>
    public static Expr operator !=(Expr? a, Expr? b) => a is null ? (b is null ? Lit(false) : b.IsNotNull()) : b is null ? a.IsNotNull() : Call("ne", a, b);

    public Expr Eq(Expr other) => Call("eq", this, other);

    public Expr Ne(Expr other) => Call("ne", this, other);

    public Expr In(params Expr[] values) => Call("in", [this, .. values]);

    public Expr IsNull() => Call("is_null", this);

    public Expr IsNotNull() => Call("is_not_null", this);

    public Expr Cast(WeftType type) => new CallExpr("cast", [this], type);

    public Expr Abs() => Call("abs", this);

    public Expr Lower() => Call("lower", this);

    public Expr Upper() => Call("upper", this);

    public Expr Length() => Call("length", this);

    public Expr Contains(Expr part) => Call("contains", this, part);

    public Expr StartsWith(Expr part) => Call("starts_with", this, part);

    public Expr EndsWith(Expr part) => Call("ends_with", this, part);

    public Expr Substring(Expr start, Expr length) => Call("substring", this, start, length);

    public Expr HourOfDay() => Call("hour_of_day", this);

    public Expr DayOfWeek() => Call("day_of_week", this);

    public Expr OrElse(Expr fallback) => Call("coalesce", this, fallback);

    private static CallExpr Call(string op, params Expr[] args) => new(op, [.. args], null);

    // Equals/GetHashCode are reference-based on purpose: operators above return expressions, so
    // structural equality lives in the canonical JSON (and its fingerprint), not here.
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);

    public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(this);
}

/// <summary>A reference to a column available at this point of the executor chain.</summary>
public sealed class ColumnExpr : Expr
{
    internal ColumnExpr(string name) => Name = name;

    public string Name { get; }
}

/// <summary>A typed constant. Values: long (int32/int64/timestamp µs), double, string, bool, or null.</summary>
public sealed class LiteralExpr : Expr
{
    internal LiteralExpr(object? value, WeftType type)
    {
        Value = value;
        Type = type;
    }

    public object? Value { get; }

    public WeftType Type { get; }
}

/// <summary>An operator or function applied to arguments; <see cref="TargetType"/> is set for casts.</summary>
public sealed class CallExpr : Expr
{
    internal CallExpr(string op, ImmutableArray<Expr> args, WeftType? targetType)
    {
        Op = op;
        Args = args;
        TargetType = targetType;
    }

    public string Op { get; }

    public ImmutableArray<Expr> Args { get; }

    public WeftType? TargetType { get; }
}

/// <summary>Conversions between instants and the microsecond timestamps stored in columns.</summary>
public static class Timestamps
{
    /// <summary>The earliest instant a date holds (0001-01-01T00:00:00Z), in µs since the epoch.</summary>
    public static readonly long MinMicros = (DateTime.MinValue.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond;

    /// <summary>The latest instant a date holds (9999-12-31T23:59:59.999999Z), in µs since the epoch.</summary>
    public static readonly long MaxMicros = (DateTime.MaxValue.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond;

    /// <summary>
    /// µs since the epoch, sub-µs digits dropped as DuckDB drops them: the instant's µs floor, so
    /// 1969-12-31T23:59:59.9999999Z is -1 µs (division rounds toward zero, which gave 0: the next second).
    /// </summary>
    public static long ToMicros(DateTimeOffset value)
    {
        long ticks = value.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        long micros = ticks / 10;
        return ticks % 10 < 0 ? micros - 1 : micros;
    }

    public static DateTimeOffset FromMicros(long micros) => new(DateTimeOffset.UnixEpoch.UtcTicks + (micros * 10), TimeSpan.Zero);

    public static string Format(long micros) => FromMicros(micros).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// An instant a user typed (a command-line option, a query parameter): ISO 8601, a date
    /// (<c>2026-11-01</c>) or a date and time with an optional fraction and offset (UTC without one).
    /// Other forms the framework would guess at (<c>11/05/2026</c>, RFC 1123) are refused: their
    /// reading depends on conventions the caller may not share.
    /// </summary>
    public static bool TryParseInstant(string? text, out long micros)
    {
        micros = 0;
        if (text is null || text.Length < 10 || text.Length > 40 || !IsDigits(text, 0, 4) || text[4] != '-' || !IsDigits(text, 5, 2) || text[7] != '-' || !IsDigits(text, 8, 2)
            || (text.Length > 10 && text[10] is not ('T' or 't' or ' ')))
        {
            return false;
        }

        if (!DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out var value))
        {
            return false;
        }

        micros = ToMicros(value);
        return true;

        static bool IsDigits(string s, int at, int count)
        {
            for (int i = at; i < at + count; i++)
            {
                if (!char.IsAsciiDigit(s[i]))
                {
                    return false;
                }
            }

            return true;
        }
    }
}
