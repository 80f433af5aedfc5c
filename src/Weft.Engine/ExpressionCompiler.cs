using System.Globalization;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>An expression compiled at load time into a tree of typed, vectorised evaluators.</summary>
public abstract class CompiledExpr
{
    private protected CompiledExpr(WeftType type) => Type = type;

    public WeftType Type { get; }

    /// <summary>Evaluates over every row of <paramref name="batch"/>; per-row failures go to <paramref name="errors"/>.</summary>
    public abstract Column Evaluate(EventBatch batch, RowErrors errors);
}

/// <summary>
/// Compiles portable expression trees (checked by <see cref="ExprTyper"/>) into evaluators that loop
/// over whole columns: one virtual call per node per batch, not per row, so a record-at-a-time
/// batch and a million-row batch run the same code.
/// </summary>
public static class ExpressionCompiler
{
    public static CompiledExpr Compile(Expr expr, IReadOnlyDictionary<string, FieldDefinition> scope)
    {
        var problems = new List<DefinitionProblem>();
        if (ExprTyper.Infer(expr, scope, "$", problems) is not { } type)
        {
            throw new DefinitionException("expression", problems);
        }

        var node = Build(expr, scope);
        return node.Type == type.Type ? node : new ConformNode(node, type.Type);
    }

    private static CompiledExpr Build(Expr expr, IReadOnlyDictionary<string, FieldDefinition> scope)
    {
        switch (expr)
        {
            case ColumnExpr c:
                return new ColumnNode(c.Name, scope[c.Name].Type);
            case LiteralExpr l:
                return new LiteralNode(l.Value, l.Type);
            case CallExpr call:
            {
                var args = new CompiledExpr[call.Args.Length];
                for (int i = 0; i < args.Length; i++)
                {
                    args[i] = Build(call.Args[i], scope);
                }

                return call.Op switch
                {
                    "eq" or "ne" or "lt" or "le" or "gt" or "ge" => new CompareNode(call.Op, args[0], args[1]),
                    "and" or "or" => new LogicNode(call.Op == "and", args),
                    "not" => new NotNode(args[0]),
                    "in" => new InNode(args[0], call.Args.Skip(1).Cast<LiteralExpr>().ToArray()),
                    "add" or "sub" or "mul" or "mod" => new ArithmeticNode(call.Op, args[0], args[1]),
                    "div" => new DivideNode(args[0], args[1]),
                    "neg" or "abs" => new UnaryNumericNode(call.Op, args[0]),
                    "is_null" => new IsNullNode(args[0], negate: false),
                    "is_not_null" => new IsNullNode(args[0], negate: true),
                    "coalesce" => new CoalesceNode(args, UnifyAll(args)),
                    "if" => new IfNode(args[0], args[1], args[2], UnifyAll([args[1], args[2]])),
                    "cast" => new CastNode(args[0], call.TargetType!.Value),
                    "lower" or "upper" or "length" => new StringUnaryNode(call.Op, args[0]),
                    "contains" or "starts_with" or "ends_with" => new StringPredicateNode(call.Op, args[0], args[1]),
                    "concat" => new ConcatNode(args),
                    "substring" => new SubstringNode(args[0], args[1], args[2]),
                    "hour_of_day" or "day_of_week" => new TimePartNode(call.Op, args[0]),
                    _ => throw new ArgumentOutOfRangeException(nameof(expr), call.Op, "unknown operator"),
                };
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(expr));
        }
    }

    private static WeftType UnifyAll(IReadOnlyList<CompiledExpr> args)
    {
        var t = args[0].Type;
        foreach (var a in args)
        {
            ExprTyper.Unify(t, a.Type, out t);
        }

        return t;
    }

    // ---------- shared helpers ----------
    internal static bool[]? OrNulls(bool[]? a, bool[]? b)
    {
        if (a is null)
        {
            return b is null ? null : (bool[])b.Clone();
        }

        var r = (bool[])a.Clone();
        if (b is not null)
        {
            for (int i = 0; i < r.Length; i++)
            {
                r[i] |= b[i];
            }
        }

        return r;
    }

    internal static long[] Longs(Column c)
    {
        switch (c)
        {
            case PrimitiveColumn<long> l:
                return l.Values;
            case PrimitiveColumn<int> i:
            {
                var r = new long[i.Length];
                for (int k = 0; k < r.Length; k++)
                {
                    r[k] = i.Values[k];
                }

                return r;
            }

            default:
                throw new InvalidOperationException($"expected an integer column, got {c.Type}");
        }
    }

    internal static double[] Doubles(Column c)
    {
        var r = new double[c.Length];
        switch (c)
        {
            case PrimitiveColumn<double> d:
                return d.Values;
            case PrimitiveColumn<float> f:
                for (int k = 0; k < r.Length; k++)
                {
                    r[k] = f.Values[k];
                }

                return r;
            case PrimitiveColumn<long> l:
                for (int k = 0; k < r.Length; k++)
                {
                    r[k] = l.Values[k];
                }

                return r;
            case PrimitiveColumn<int> i:
                for (int k = 0; k < r.Length; k++)
                {
                    r[k] = i.Values[k];
                }

                return r;
            default:
                throw new InvalidOperationException($"expected a numeric column, got {c.Type}");
        }
    }

    internal static Column FromLongs(WeftType type, long[] values, bool[]? nulls) => new PrimitiveColumn<long>(type.Kind == ScalarKind.Timestamp ? WeftType.Timestamp : WeftType.Int64, values, nulls);

    /// <summary>Converts a computed column (int64/float64) to the narrower declared type, flagging overflow per row.</summary>
    internal static Column Conform(Column c, WeftType type, RowErrors errors)
    {
        if (c.Type == type)
        {
            return c;
        }

        int n = c.Length;
        switch (type.Kind)
        {
            case ScalarKind.Int32 when c is PrimitiveColumn<long> l:
            {
                var r = new int[n];
                for (int i = 0; i < n; i++)
                {
                    if (!c.IsNull(i))
                    {
                        if (l.Values[i] is < int.MinValue or > int.MaxValue)
                        {
                            errors.Add(i, $"value {l.Values[i]} overflows int32");
                        }
                        else
                        {
                            r[i] = (int)l.Values[i];
                        }
                    }
                }

                return new PrimitiveColumn<int>(type, r, c.Nulls);
            }

            case ScalarKind.Int64 when c is PrimitiveColumn<int>:
                return new PrimitiveColumn<long>(type, Longs(c), c.Nulls);
            case ScalarKind.Int64 or ScalarKind.Timestamp when c is PrimitiveColumn<long> l2:
                return new PrimitiveColumn<long>(type, l2.Values, c.Nulls);
            case ScalarKind.Float32:
            {
                var d = Doubles(c);
                var r = new float[n];
                for (int i = 0; i < n; i++)
                {
                    r[i] = (float)d[i];
                }

                return new PrimitiveColumn<float>(type, r, c.Nulls);
            }

            case ScalarKind.Float64:
                return new PrimitiveColumn<double>(type, Doubles(c), c.Nulls);
            default:
                throw new InvalidOperationException($"cannot conform {c.Type} to {type}");
        }
    }

    private static Column Broadcast(object? value, WeftType type, int n)
    {
        if (value is null)
        {
            return Column.AllNull(type, n);
        }

        switch (type.Kind)
        {
            case ScalarKind.Bool:
            {
                var v = new bool[n];
                Array.Fill(v, (bool)value);
                return new PrimitiveColumn<bool>(type, v);
            }

            case ScalarKind.Int32:
            {
                var v = new int[n];
                Array.Fill(v, (int)(long)value);
                return new PrimitiveColumn<int>(type, v);
            }

            case ScalarKind.Int64 or ScalarKind.Timestamp:
            {
                var v = new long[n];
                Array.Fill(v, (long)value);
                return new PrimitiveColumn<long>(type, v);
            }

            case ScalarKind.Float32:
            {
                var v = new float[n];
                Array.Fill(v, (float)(double)value);
                return new PrimitiveColumn<float>(type, v);
            }

            case ScalarKind.Float64:
            {
                var v = new double[n];
                Array.Fill(v, (double)value);
                return new PrimitiveColumn<double>(type, v);
            }

            default:
            {
                var v = new string?[n];
                Array.Fill(v, (string)value);
                return new StringColumn(v);
            }
        }
    }

    // ---------- nodes ----------
    private sealed class ConformNode(CompiledExpr inner, WeftType type) : CompiledExpr(type)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors) => Conform(inner.Evaluate(batch, errors), Type, errors);
    }

    private sealed class ColumnNode(string name, WeftType type) : CompiledExpr(type)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors) => batch[name];
    }

    private sealed class LiteralNode(object? value, WeftType type) : CompiledExpr(type)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors) => Broadcast(value, Type, batch.RowCount);
    }

    private interface ICompare
    {
        static abstract bool Test(int comparison);
    }

    private struct Eq : ICompare
    {
        public static bool Test(int c) => c == 0;
    }

    private struct Ne : ICompare
    {
        public static bool Test(int c) => c != 0;
    }

    private struct Lt : ICompare
    {
        public static bool Test(int c) => c < 0;
    }

    private struct Le : ICompare
    {
        public static bool Test(int c) => c <= 0;
    }

    private struct Gt : ICompare
    {
        public static bool Test(int c) => c > 0;
    }

    private struct Ge : ICompare
    {
        public static bool Test(int c) => c >= 0;
    }

    private sealed class CompareNode(string op, CompiledExpr left, CompiledExpr right) : CompiledExpr(WeftType.Bool)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var a = left.Evaluate(batch, errors);
            var b = right.Evaluate(batch, errors);
            var result = new bool[batch.RowCount];
            return op switch
            {
                "eq" => Run<Eq>(a, b, result),
                "ne" => Run<Ne>(a, b, result),
                "lt" => Run<Lt>(a, b, result),
                "le" => Run<Le>(a, b, result),
                "gt" => Run<Gt>(a, b, result),
                _ => Run<Ge>(a, b, result),
            };
        }

        private static Column Run<TOp>(Column a, Column b, bool[] result)
            where TOp : struct, ICompare
        {
            var nulls = OrNulls(a.Nulls, b.Nulls);
            if (a.Type.IsNumeric && b.Type.IsNumeric)
            {
                if (a.Type.IsInteger && b.Type.IsInteger)
                {
                    Loop<long, TOp>(Longs(a), Longs(b), result);
                }
                else
                {
                    LoopFloat<TOp>(Doubles(a), Doubles(b), result);
                }
            }
            else if (a is StringColumn sa && b is StringColumn sb)
            {
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = TOp.Test(string.CompareOrdinal(sa.Values[i], sb.Values[i]));
                }
            }
            else if (a is PrimitiveColumn<bool> ba && b is PrimitiveColumn<bool> bb)
            {
                Loop<bool, TOp>(ba.Values, bb.Values, result);
            }
            else
            {
                Loop<long, TOp>(Longs(a), Longs(b), result);
            }

            return new PrimitiveColumn<bool>(WeftType.Bool, result, nulls);
        }

        /// <summary>
        /// Floats compare as DuckDB compares them: NaN equals NaN and is greater than every other value
        /// (-0 equals 0). double.CompareTo put NaN below everything, so NaN &lt; 0 was true.
        /// </summary>
        private static void LoopFloat<TOp>(double[] a, double[] b, bool[] result)
            where TOp : struct, ICompare
        {
            for (int i = 0; i < result.Length; i++)
            {
                double x = a[i], y = b[i];
                int c = x < y ? -1 : x > y ? 1 : x == y ? 0 : double.IsNaN(x) ? (double.IsNaN(y) ? 0 : 1) : -1;
                result[i] = TOp.Test(c);
            }
        }

        private static void Loop<T, TOp>(T[] a, T[] b, bool[] result)
            where T : IComparable<T>
            where TOp : struct, ICompare
        {
            for (int i = 0; i < result.Length; i++)
            {
                result[i] = TOp.Test(a[i].CompareTo(b[i]));
            }
        }
    }

    private sealed class LogicNode(bool isAnd, CompiledExpr[] args) : CompiledExpr(WeftType.Bool)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            int n = batch.RowCount;
            var value = new bool[n];
            var nulls = new bool[n];
            Array.Fill(value, isAnd);
            // Each argument's failures apart: one counts only where no other argument decides the row
            // (false for and, true for or), so a guard such as s != '' and cast(s as int64) > 5 does not
            // dead-letter the rows it guards, whatever the order of the arguments.
            var argErrors = new RowErrors[args.Length];
            var columns = new PrimitiveColumn<bool>[args.Length];
            bool failed = false;
            for (int a = 0; a < args.Length; a++)
            {
                var own = argErrors[a] = new RowErrors(n);
                var c = columns[a] = (PrimitiveColumn<bool>)args[a].Evaluate(batch, own);
                failed |= own.Count > 0;
                for (int i = 0; i < n; i++)
                {
                    bool isNull = c.IsNull(i);
                    // Three-valued logic: a definite false decides AND, a definite true decides OR.
                    if (!isNull && c.Values[i] != isAnd)
                    {
                        value[i] = !isAnd;
                        nulls[i] = false;
                    }
                    else if (isNull && value[i] == isAnd)
                    {
                        nulls[i] = true;
                    }
                }
            }

            if (failed)
            {
                foreach (var own in argErrors)
                {
                    errors.AddFrom(own, row => !DecidedByAnother(columns, argErrors, row));
                }
            }

            return new PrimitiveColumn<bool>(WeftType.Bool, value, Array.IndexOf(nulls, true) >= 0 ? nulls : null);
        }

        /// <summary>Whether an argument that did not fail on <paramref name="row"/> decides it (false for and, true for or).</summary>
        private bool DecidedByAnother(PrimitiveColumn<bool>[] columns, RowErrors[] argErrors, int row)
        {
            for (int a = 0; a < columns.Length; a++)
            {
                if (!argErrors[a].Has(row) && !columns[a].IsNull(row) && columns[a].Values[row] != isAnd)
                {
                    return true;
                }
            }

            return false;
        }
    }

    private sealed class NotNode(CompiledExpr arg) : CompiledExpr(WeftType.Bool)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var c = (PrimitiveColumn<bool>)arg.Evaluate(batch, errors);
            var r = new bool[c.Length];
            for (int i = 0; i < r.Length; i++)
            {
                r[i] = !c.Values[i];
            }

            return new PrimitiveColumn<bool>(WeftType.Bool, r, c.Nulls);
        }
    }

    private sealed class InNode : CompiledExpr
    {
        private readonly CompiledExpr _arg;
        private readonly HashSet<long>? _longs;
        private readonly HashSet<double>? _doubles;
        private readonly HashSet<string>? _strings;
        private readonly HashSet<bool>? _bools;

        public InNode(CompiledExpr arg, LiteralExpr[] values)
            : base(WeftType.Bool)
        {
            _arg = arg;
            var nonNull = values.Where(v => v.Value is not null).ToArray();
            if (arg.Type.IsNumeric && (!arg.Type.IsInteger || nonNull.Any(v => !v.Type.IsInteger)))
            {
                _doubles = nonNull.Select(v => Convert.ToDouble(v.Value, CultureInfo.InvariantCulture)).ToHashSet();
            }
            else if (arg.Type.IsNumeric || arg.Type.Kind == ScalarKind.Timestamp)
            {
                _longs = nonNull.Select(v => (long)v.Value!).ToHashSet();
            }
            else if (arg.Type.Kind == ScalarKind.Bool)
            {
                _bools = nonNull.Select(v => (bool)v.Value!).ToHashSet();
            }
            else
            {
                _strings = nonNull.Select(v => (string)v.Value!).ToHashSet(StringComparer.Ordinal);
            }
        }

        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var c = _arg.Evaluate(batch, errors);
            var r = new bool[c.Length];
            if (_doubles is not null)
            {
                var d = Doubles(c);
                for (int i = 0; i < r.Length; i++)
                {
                    r[i] = _doubles.Contains(d[i]);
                }
            }
            else if (_longs is not null)
            {
                var l = Longs(c);
                for (int i = 0; i < r.Length; i++)
                {
                    r[i] = _longs.Contains(l[i]);
                }
            }
            else if (_bools is not null)
            {
                var b = ((PrimitiveColumn<bool>)c).Values;
                for (int i = 0; i < r.Length; i++)
                {
                    r[i] = _bools.Contains(b[i]);
                }
            }
            else
            {
                var s = ((StringColumn)c).Values;
                for (int i = 0; i < r.Length; i++)
                {
                    r[i] = s[i] is not null && _strings!.Contains(s[i]!);
                }
            }

            return new PrimitiveColumn<bool>(WeftType.Bool, r, c.Nulls);
        }
    }

    private sealed class ArithmeticNode(string op, CompiledExpr left, CompiledExpr right)
        : CompiledExpr(ResultType(op, left.Type, right.Type))
    {
        private static WeftType ResultType(string op, WeftType a, WeftType b)
        {
            if (a.Kind == ScalarKind.Timestamp)
            {
                return b.Kind == ScalarKind.Timestamp ? WeftType.Int64 : WeftType.Timestamp;
            }

            return a.IsInteger && b.IsInteger ? WeftType.Int64 : WeftType.Float64;
        }

        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var a = left.Evaluate(batch, errors);
            var b = right.Evaluate(batch, errors);
            var nulls = OrNulls(a.Nulls, b.Nulls);
            int n = batch.RowCount;
            if (Type.Kind is ScalarKind.Int64 or ScalarKind.Timestamp)
            {
                var x = Longs(a);
                var y = Longs(b);
                var r = new long[n];
                for (int i = 0; i < n; i++)
                {
                    if (nulls is not null && nulls[i])
                    {
                        continue;
                    }

                    try
                    {
                        r[i] = op switch
                        {
                            "add" => checked(x[i] + y[i]),
                            "sub" => checked(x[i] - y[i]),
                            "mul" => checked(x[i] * y[i]),
                            _ => y[i] == 0 ? SetNull(ref nulls, i, n) : x[i] % y[i],
                        };
                    }
                    catch (OverflowException)
                    {
                        errors.Add(i, $"integer overflow in '{op}'");
                        continue;
                    }

                    if (Type.Kind == ScalarKind.Timestamp && (r[i] < Timestamps.MinMicros || r[i] > Timestamps.MaxMicros))
                    {
                        // No date outside years 1-9999: formatting it later threw (failing the executor) or wrapped round.
                        errors.Add(i, $"timestamp out of range in '{op}' (outside years 1-9999)");
                        r[i] = 0;
                    }
                }

                return FromLongs(Type, r, nulls);
            }

            var dx = Doubles(a);
            var dy = Doubles(b);
            var d = new double[n];
            for (int i = 0; i < n; i++)
            {
                d[i] = op switch
                {
                    "add" => dx[i] + dy[i],
                    "sub" => dx[i] - dy[i],
                    "mul" => dx[i] * dy[i],
                    _ => dy[i] == 0 ? SetNull(ref nulls, i, n) : dx[i] % dy[i],
                };
            }

            return new PrimitiveColumn<double>(WeftType.Float64, d, nulls);
        }
    }

    private static long SetNull(ref bool[]? nulls, int i, int n)
    {
        nulls ??= new bool[n];
        nulls[i] = true;
        return 0;
    }

    private sealed class DivideNode(CompiledExpr left, CompiledExpr right) : CompiledExpr(WeftType.Float64)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var a = left.Evaluate(batch, errors);
            var b = right.Evaluate(batch, errors);
            var nulls = OrNulls(a.Nulls, b.Nulls);
            var x = Doubles(a);
            var y = Doubles(b);
            var r = new double[batch.RowCount];
            for (int i = 0; i < r.Length; i++)
            {
                if (y[i] == 0)
                {
                    // Division by zero is null, as in DuckDB.
                    SetNull(ref nulls, i, r.Length);
                }
                else
                {
                    r[i] = x[i] / y[i];
                }
            }

            return new PrimitiveColumn<double>(WeftType.Float64, r, nulls);
        }
    }

    private sealed class UnaryNumericNode(string op, CompiledExpr arg) : CompiledExpr(arg.Type.IsInteger ? WeftType.Int64 : WeftType.Float64)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var c = arg.Evaluate(batch, errors);
            if (Type == WeftType.Int64)
            {
                var x = Longs(c);
                var r = new long[x.Length];
                for (int i = 0; i < r.Length; i++)
                {
                    if (x[i] == long.MinValue && !c.IsNull(i))
                    {
                        errors.Add(i, $"integer overflow in '{op}'");
                        continue;
                    }

                    r[i] = op == "neg" ? -x[i] : Math.Abs(x[i]);
                }

                return new PrimitiveColumn<long>(Type, r, c.Nulls);
            }

            var d = Doubles(c);
            var rd = new double[d.Length];
            for (int i = 0; i < rd.Length; i++)
            {
                rd[i] = op == "neg" ? -d[i] : Math.Abs(d[i]);
            }

            return new PrimitiveColumn<double>(Type, rd, c.Nulls);
        }
    }

    private sealed class IsNullNode(CompiledExpr arg, bool negate) : CompiledExpr(WeftType.Bool)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var c = arg.Evaluate(batch, errors);
            var r = new bool[c.Length];
            for (int i = 0; i < r.Length; i++)
            {
                r[i] = c.IsNull(i) != negate;
            }

            return new PrimitiveColumn<bool>(WeftType.Bool, r);
        }
    }

    private sealed class CoalesceNode(CompiledExpr[] args, WeftType type) : CompiledExpr(type)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            int n = batch.RowCount;
            var chosen = new int[n];
            Array.Fill(chosen, -1);
            var columns = new Column[args.Length];
            for (int a = 0; a < args.Length; a++)
            {
                // Every argument runs over the whole batch, but its failures count only for rows no earlier
                // argument decided: coalesce(x, cast(s as int64)) must not dead-letter a row x answers.
                var argErrors = new RowErrors(n);
                columns[a] = Conform(args[a].Evaluate(batch, argErrors), Type, argErrors);
                errors.AddFrom(argErrors, row => chosen[row] < 0);

                for (int i = 0; i < n; i++)
                {
                    if (chosen[i] < 0 && !columns[a].IsNull(i))
                    {
                        chosen[i] = a;
                    }
                }
            }

            return Pick(Type, columns, chosen);
        }
    }

    private sealed class IfNode(CompiledExpr condition, CompiledExpr then, CompiledExpr otherwise, WeftType type) : CompiledExpr(type)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            int n = batch.RowCount;
            var c = (PrimitiveColumn<bool>)condition.Evaluate(batch, errors);
            var chosen = new int[n];
            for (int i = 0; i < chosen.Length; i++)
            {
                chosen[i] = !c.IsNull(i) && c.Values[i] ? 0 : 1;
            }

            // Both branches run over the whole batch, but a branch's failures count only for the rows that
            // take it: if(s = '', 0, cast(s as int64)) dead-lettered the rows its guard was written for.
            CompiledExpr[] branches = [then, otherwise];
            var columns = new Column[2];
            for (int b = 0; b < 2; b++)
            {
                var branchErrors = new RowErrors(n);
                columns[b] = Conform(branches[b].Evaluate(batch, branchErrors), Type, branchErrors);
                errors.AddFrom(branchErrors, row => chosen[row] == b);
            }

            return Pick(Type, columns, chosen);
        }
    }

    /// <summary>Row i comes from columns[chosen[i]]; -1 means null.</summary>
    private static Column Pick(WeftType type, Column[] columns, int[] chosen)
    {
        int n = chosen.Length;
        var nulls = new bool[n];
        bool any = false;
        for (int i = 0; i < n; i++)
        {
            nulls[i] = chosen[i] < 0 || columns[chosen[i]].IsNull(i);
            any |= nulls[i];
        }

        var mask = any ? nulls : null;
        switch (columns[0])
        {
            case StringColumn:
            {
                var r = new string?[n];
                for (int i = 0; i < n; i++)
                {
                    r[i] = nulls[i] ? null : ((StringColumn)columns[chosen[i]]).Values[i];
                }

                return new StringColumn(r, mask);
            }

            case PrimitiveColumn<bool>:
                return PickPrimitive<bool>(type, columns, chosen, mask);
            case PrimitiveColumn<int>:
                return PickPrimitive<int>(type, columns, chosen, mask);
            case PrimitiveColumn<long>:
                return PickPrimitive<long>(type, columns, chosen, mask);
            case PrimitiveColumn<float>:
                return PickPrimitive<float>(type, columns, chosen, mask);
            case PrimitiveColumn<double>:
                return PickPrimitive<double>(type, columns, chosen, mask);
            default:
            {
                var all = Column.Empty(type, n, mask);
                var rows = new int[1];
                var parts = new Column[n];
                for (int i = 0; i < n; i++)
                {
                    rows[0] = i;
                    parts[i] = nulls[i] ? Column.AllNull(type, 1) : columns[chosen[i]].Gather(rows);
                }

                return n == 0 ? all : Column.Concat(type, parts);
            }
        }
    }

    private static Column PickPrimitive<T>(WeftType type, Column[] columns, int[] chosen, bool[]? mask)
        where T : unmanaged
    {
        var r = new T[chosen.Length];
        for (int i = 0; i < r.Length; i++)
        {
            if (chosen[i] >= 0)
            {
                r[i] = ((PrimitiveColumn<T>)columns[chosen[i]]).Values[i];
            }
        }

        return new PrimitiveColumn<T>(type, r, mask);
    }

    private sealed class CastNode(CompiledExpr arg, WeftType target) : CompiledExpr(target)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors) => Casts.Cast(arg.Evaluate(batch, errors), Type, errors);
    }

    private sealed class StringUnaryNode(string op, CompiledExpr arg) : CompiledExpr(op == "length" ? WeftType.Int64 : WeftType.String)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var c = arg.Evaluate(batch, errors);
            int n = c.Length;
            if (op == "length")
            {
                var r = new long[n];
                for (int i = 0; i < n; i++)
                {
                    if (!c.IsNull(i))
                    {
                        r[i] = c is StringColumn s ? CodePoints(s.Values[i]!) : ((Array)c.GetValue(i)!).Length;
                    }
                }

                return new PrimitiveColumn<long>(WeftType.Int64, r, c.Nulls);
            }

            var sv = ((StringColumn)c).Values;
            var rs = new string?[n];
            for (int i = 0; i < n; i++)
            {
                rs[i] = sv[i] is null ? null : op == "lower" ? Lower(sv[i]!) : Upper(sv[i]!);
            }

            return new StringColumn(rs, c.Nulls);
        }

        // .NET's invariant casing leaves four characters as they are that DuckDB (the engine's reference)
        // maps: İ lower-cases to i; ı upper-cases to I, ſ to S, ß to ẞ. Every other code point agrees but
        // the case pairs Unicode 16 added, which DuckDB's tables predate (a differential test over
        // U+0020..U+1FFFF checks it).
        private static string Lower(string text)
        {
            var lower = text.ToLowerInvariant();
            return lower.Contains('\u0130', StringComparison.Ordinal) ? lower.Replace('\u0130', 'i') : lower;
        }

        private static string Upper(string text)
        {
            var upper = text.ToUpperInvariant();
            return upper.AsSpan().IndexOfAny('\u0131', '\u017F', '\u00DF') < 0 ? upper
                : upper.Replace('\u0131', 'I').Replace('\u017F', 'S').Replace('\u00DF', '\u1E9E');
        }
    }

    private sealed class StringPredicateNode(string op, CompiledExpr left, CompiledExpr right) : CompiledExpr(WeftType.Bool)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var a = (StringColumn)left.Evaluate(batch, errors);
            var b = (StringColumn)right.Evaluate(batch, errors);
            var nulls = OrNulls(a.Nulls, b.Nulls);
            var r = new bool[batch.RowCount];
            for (int i = 0; i < r.Length; i++)
            {
                if (a.Values[i] is { } x && b.Values[i] is { } y)
                {
                    r[i] = op switch
                    {
                        "contains" => x.Contains(y, StringComparison.Ordinal),
                        "starts_with" => x.StartsWith(y, StringComparison.Ordinal),
                        _ => x.EndsWith(y, StringComparison.Ordinal),
                    };
                }
            }

            return new PrimitiveColumn<bool>(WeftType.Bool, r, nulls);
        }
    }

    private sealed class ConcatNode(CompiledExpr[] args) : CompiledExpr(WeftType.String)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var parts = args.Select(a => (StringColumn)a.Evaluate(batch, errors)).ToArray();
            var r = new string?[batch.RowCount];
            for (int i = 0; i < r.Length; i++)
            {
                string? s = "";
                foreach (var p in parts)
                {
                    if (p.Values[i] is null)
                    {
                        s = null;
                        break;
                    }

                    s += p.Values[i];
                }

                r[i] = s;
            }

            return new StringColumn(r);
        }
    }

    private sealed class SubstringNode(CompiledExpr text, CompiledExpr start, CompiledExpr length) : CompiledExpr(WeftType.String)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var s = (StringColumn)text.Evaluate(batch, errors);
            var st = start.Evaluate(batch, errors);
            var ln = length.Evaluate(batch, errors);
            var starts = Longs(st);
            var lengths = Longs(ln);
            var r = new string?[batch.RowCount];
            for (int i = 0; i < r.Length; i++)
            {
                if (s.Values[i] is not { } x || st.IsNull(i) || ln.IsNull(i))
                {
                    continue;
                }

                // SQL semantics: 1-based start; out-of-range parts are clipped.
                // The end in 128 bits: start - 1 + length wrapped for a start or length near the int64 limits.
                // Positions count characters (code points), as length does: a UTF-16 index split a
                // character beyond U+FFFF into a lone surrogate, text that is no Unicode.
                int count = CodePoints(x);
                long from = Math.Max(starts[i], 1) - 1;
                Int128 end = (Int128)starts[i] - 1 + Math.Max(lengths[i], 0);
                long to = end >= count ? count : end <= from ? from : (long)end;
                if (from >= count || to <= from)
                {
                    r[i] = "";
                }
                else if (count == x.Length)
                {
                    r[i] = x.Substring((int)from, (int)(to - from));
                }
                else
                {
                    int start = Utf16Index(x, 0, (int)from);
                    r[i] = x[start..Utf16Index(x, start, (int)(to - from))];
                }
            }

            return new StringColumn(r);
        }
    }

    /// <summary>Characters (code points) of <paramref name="text"/>: a surrogate pair counts once (a lone surrogate, which parsing refuses, once too).</summary>
    private static int CodePoints(string text)
    {
        int i = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (i < 0)
        {
            return text.Length;
        }

        int n = i;
        for (; i < text.Length; i++, n++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
        }

        return n;
    }

    /// <summary>The UTF-16 index <paramref name="codePoints"/> characters after index <paramref name="start"/>.</summary>
    private static int Utf16Index(string text, int start, int codePoints)
    {
        int i = start;
        for (int k = 0; k < codePoints && i < text.Length; k++)
        {
            i += char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
        }

        return i;
    }

    private sealed class TimePartNode(string op, CompiledExpr arg) : CompiledExpr(WeftType.Int64)
    {
        public override Column Evaluate(EventBatch batch, RowErrors errors)
        {
            var c = arg.Evaluate(batch, errors);
            var t = Longs(c);
            var r = new long[t.Length];
            for (int i = 0; i < r.Length; i++)
            {
                long days = Math.DivRem(t[i], 86_400_000_000L, out long rem);
                if (rem < 0)
                {
                    days--;
                    rem += 86_400_000_000L;
                }

                // day_of_week follows DuckDB's dayofweek: 0 = Sunday; 1970-01-01 was a Thursday (4).
                r[i] = op == "hour_of_day" ? rem / 3_600_000_000L : (((days + 4) % 7) + 7) % 7;
            }

            return new PrimitiveColumn<long>(WeftType.Int64, r, c.Nulls);
        }
    }
}
