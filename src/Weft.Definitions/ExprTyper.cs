namespace Weft.Definitions;

/// <summary>The type of an expression and whether it can be null.</summary>
public readonly record struct ExprType(WeftType Type, bool Nullable);

/// <summary>
/// Type inference and checking of expressions against the columns available at a step. The engine
/// compiles only expressions this accepts, so its rules are the language's rules.
/// </summary>
public static class ExprTyper
{
    public static readonly IReadOnlyList<string> Operators =
    [
        "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "in", "add", "sub", "mul", "div", "mod", "neg", "abs",
        "is_null", "is_not_null", "coalesce", "if", "cast", "lower", "upper", "length", "contains", "starts_with",
        "ends_with", "concat", "substring", "hour_of_day", "day_of_week",
    ];

    /// <summary>Infers the type of <paramref name="expr"/>; on failure adds problems and returns null.</summary>
    public static ExprType? Infer(Expr expr, IReadOnlyDictionary<string, FieldDefinition> scope, string path, List<DefinitionProblem> problems)
    {
        switch (expr)
        {
            case ColumnExpr c:
                if (scope.TryGetValue(c.Name, out var field))
                {
                    return new ExprType(field.Type, field.Nullable);
                }

                problems.Add(new DefinitionProblem(path, $"unknown column '{c.Name}'", Suggest(c.Name, scope.Keys)));
                return null;
            case LiteralExpr l:
                return new ExprType(l.Type, l.Value is null);
            case CallExpr call:
                return InferCall(call, scope, path, problems);
            default:
                throw new ArgumentOutOfRangeException(nameof(expr));
        }
    }

    private static ExprType? InferCall(CallExpr call, IReadOnlyDictionary<string, FieldDefinition> scope, string path, List<DefinitionProblem> problems)
    {
        var args = new ExprType?[call.Args.Length];
        bool ok = true;
        for (int i = 0; i < args.Length; i++)
        {
            args[i] = Infer(call.Args[i], scope, $"{path}.args[{i}]", problems);
            ok &= args[i] is not null;
        }

        if (!ok)
        {
            return null;
        }

        bool anyNull = false;
        foreach (var a in args)
        {
            anyNull |= a!.Value.Nullable;
        }

        ExprType? Fail(string message, string? hint = null)
        {
            problems.Add(new DefinitionProblem(path, message, hint));
            return null;
        }

        bool Arity(int min, int max)
        {
            if (args.Length >= min && args.Length <= max)
            {
                return true;
            }

            string expected = min == max ? $"{min}" : max == int.MaxValue ? $"at least {min}" : $"{min} to {max}";
            problems.Add(new DefinitionProblem(path, $"'{call.Op}' takes {expected} argument(s), got {args.Length}"));
            return false;
        }

        WeftType T(int i) => args[i]!.Value.Type;
        string Describe(int i) => T(i).ToString();

        switch (call.Op)
        {
            case "eq" or "ne" or "lt" or "le" or "gt" or "ge":
                if (!Arity(2, 2))
                {
                    return null;
                }

                return Comparable(T(0), T(1))
                    ? new ExprType(WeftType.Bool, anyNull)
                    : Fail($"cannot compare {Describe(0)} with {Describe(1)} in '{call.Op}'", "compare numbers with numbers, or values of the same type; use cast to convert");
            case "and" or "or":
                if (!Arity(2, int.MaxValue))
                {
                    return null;
                }

                for (int i = 0; i < args.Length; i++)
                {
                    if (T(i) != WeftType.Bool)
                    {
                        return Fail($"'{call.Op}' needs bool arguments, argument {i} is {Describe(i)}");
                    }
                }

                return new ExprType(WeftType.Bool, anyNull);
            case "not":
                if (!Arity(1, 1))
                {
                    return null;
                }

                return T(0) == WeftType.Bool ? new ExprType(WeftType.Bool, anyNull) : Fail($"'not' needs a bool argument, got {Describe(0)}");
            case "in":
                if (!Arity(2, int.MaxValue))
                {
                    return null;
                }

                for (int i = 1; i < args.Length; i++)
                {
                    if (call.Args[i] is not LiteralExpr)
                    {
                        return Fail($"'in' takes literal values after its first argument; argument {i} is not a literal");
                    }

                    if (!Comparable(T(0), T(i)))
                    {
                        return Fail($"'in' value {i} is {Describe(i)}, which cannot be compared with {Describe(0)}");
                    }
                }

                return new ExprType(WeftType.Bool, args[0]!.Value.Nullable);
            case "add" or "sub":
                if (!Arity(2, 2))
                {
                    return null;
                }

                if (T(0) == WeftType.Timestamp && T(1).IsInteger)
                {
                    return new ExprType(WeftType.Timestamp, anyNull);
                }

                if (call.Op == "sub" && T(0) == WeftType.Timestamp && T(1) == WeftType.Timestamp)
                {
                    return new ExprType(WeftType.Int64, anyNull);
                }

                goto case "mul";
            case "mul":
                if (!Arity(2, 2))
                {
                    return null;
                }

                return T(0).IsNumeric && T(1).IsNumeric
                    ? new ExprType(Promote(T(0), T(1)), anyNull)
                    : Fail($"'{call.Op}' needs numbers, got {Describe(0)} and {Describe(1)}", call.Op is "add" or "sub" ? "timestamps support timestamp ± int64 microseconds and timestamp - timestamp" : null);
            case "div":
                if (!Arity(2, 2))
                {
                    return null;
                }

                // Division by zero gives null (as in DuckDB), so the result is always nullable.
                return T(0).IsNumeric && T(1).IsNumeric ? new ExprType(WeftType.Float64, true) : Fail($"'div' needs numbers, got {Describe(0)} and {Describe(1)}");
            case "mod":
                if (!Arity(2, 2))
                {
                    return null;
                }

                return T(0).IsNumeric && T(1).IsNumeric ? new ExprType(Promote(T(0), T(1)), true) : Fail($"'mod' needs numbers, got {Describe(0)} and {Describe(1)}");
            case "neg" or "abs":
                if (!Arity(1, 1))
                {
                    return null;
                }

                // int64 or float64, as the engine computes it: abs and neg of int32's minimum do not fit an int32.
                return T(0).IsNumeric ? new ExprType(T(0).IsInteger ? WeftType.Int64 : WeftType.Float64, anyNull) : Fail($"'{call.Op}' needs a number, got {Describe(0)}");
            case "is_null" or "is_not_null":
                return Arity(1, 1) ? new ExprType(WeftType.Bool, false) : null;
            case "coalesce":
            {
                if (!Arity(1, int.MaxValue))
                {
                    return null;
                }

                var type = T(0);
                bool nullable = true;
                for (int i = 0; i < args.Length; i++)
                {
                    if (!Unify(type, T(i), out type))
                    {
                        return Fail($"'coalesce' argument {i} is {Describe(i)}, which does not match {Describe(0)}");
                    }

                    nullable &= args[i]!.Value.Nullable;
                }

                return new ExprType(type, nullable);
            }

            case "if":
                if (!Arity(3, 3))
                {
                    return null;
                }

                if (T(0) != WeftType.Bool)
                {
                    return Fail($"'if' condition must be bool, got {Describe(0)}");
                }

                return Unify(T(1), T(2), out var branch)
                    ? new ExprType(branch, args[1]!.Value.Nullable || args[2]!.Value.Nullable)
                    : Fail($"'if' branches have different types: {Describe(1)} and {Describe(2)}");
            case "cast":
                if (!Arity(1, 1))
                {
                    return null;
                }

                if (call.TargetType is not { } target)
                {
                    return Fail("'cast' needs a target \"type\"", WeftType.AcceptedNames);
                }

                if (target.IsList || T(0).IsList)
                {
                    return Fail($"cannot cast {Describe(0)} to {target}", "casts convert between scalar types");
                }

                return new ExprType(target, anyNull);
            case "lower" or "upper":
                if (!Arity(1, 1))
                {
                    return null;
                }

                return T(0) == WeftType.String ? new ExprType(WeftType.String, anyNull) : Fail($"'{call.Op}' needs a string, got {Describe(0)}");
            case "length":
                if (!Arity(1, 1))
                {
                    return null;
                }

                return T(0) == WeftType.String || T(0).IsList ? new ExprType(WeftType.Int64, anyNull) : Fail($"'length' needs a string or a list, got {Describe(0)}");
            case "contains" or "starts_with" or "ends_with":
                if (!Arity(2, 2))
                {
                    return null;
                }

                return T(0) == WeftType.String && T(1) == WeftType.String
                    ? new ExprType(WeftType.Bool, anyNull)
                    : Fail($"'{call.Op}' needs two strings, got {Describe(0)} and {Describe(1)}");
            case "concat":
                if (!Arity(1, int.MaxValue))
                {
                    return null;
                }

                for (int i = 0; i < args.Length; i++)
                {
                    if (T(i) != WeftType.String)
                    {
                        return Fail($"'concat' needs strings, argument {i} is {Describe(i)}", "cast it to string first");
                    }
                }

                return new ExprType(WeftType.String, anyNull);
            case "substring":
                if (!Arity(3, 3))
                {
                    return null;
                }

                return T(0) == WeftType.String && T(1).IsInteger && T(2).IsInteger
                    ? new ExprType(WeftType.String, anyNull)
                    : Fail($"'substring' takes (string, start, length), got ({Describe(0)}, {Describe(1)}, {Describe(2)})");
            case "hour_of_day" or "day_of_week":
                if (!Arity(1, 1))
                {
                    return null;
                }

                return T(0) == WeftType.Timestamp ? new ExprType(WeftType.Int64, anyNull) : Fail($"'{call.Op}' needs a timestamp, got {Describe(0)}");
            default:
                return Fail($"unknown operator '{call.Op}'", Suggest(call.Op, Operators) ?? "see docs/signal-json.md for the operator list");
        }
    }

    public static bool Comparable(WeftType a, WeftType b) =>
        !a.IsList && !b.IsList && ((a.IsNumeric && b.IsNumeric) || a.Kind == b.Kind);

    /// <summary>Numeric promotion: equal types stay, integers widen to int64, anything with a float to float64.</summary>
    public static WeftType Promote(WeftType a, WeftType b)
    {
        if (a == b)
        {
            return a;
        }

        return a.IsInteger && b.IsInteger ? WeftType.Int64 : WeftType.Float64;
    }

    public static bool Unify(WeftType a, WeftType b, out WeftType result)
    {
        if (a == b)
        {
            result = a;
            return true;
        }

        if (a.IsNumeric && b.IsNumeric)
        {
            result = Promote(a, b);
            return true;
        }

        result = a;
        return false;
    }

    /// <summary>"did you mean" by edit distance, or the list of candidates when short.</summary>
    public static string? Suggest(string name, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        var all = new List<string>();
        foreach (var c in candidates)
        {
            all.Add(c);
            int d = Distance(name, c);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = c;
            }
        }

        if (best is not null && bestDistance <= Math.Max(2, name.Length / 3))
        {
            return $"did you mean '{best}'?";
        }

        all.Sort(StringComparer.Ordinal);
        return all.Count == 0 ? null : all.Count <= 12 ? "available: " + string.Join(", ", all) : null;
    }

    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            prev[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }

            (prev, cur) = (cur, prev);
        }

        return prev[b.Length];
    }
}
