// Json: a tiny JSON reader and writer for the shapes the examples exchange with sluice
// (webhook payloads, round-trip bodies, RPC calls, Server API envelopes).
//
// Debian's mono-mcs brings no JSON library (no System.Web.Extensions, no
// System.Runtime.Serialization), so the examples carry this one. On .NET, use
// System.Text.Json instead: only this file changes.
//
// Mapping: object -> Dictionary<string, object> (written in insertion order on Mono and .NET),
// array -> List<object>, string -> string, number -> long when it is an integer that fits,
// else double, true/false -> bool, null -> null.
//
// Limits (this parser faces the network): at most MaxChars characters and MaxDepth levels
// of nesting; anything else throws FormatException with the position.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

public static class Json
{
    public const int MaxChars = 1 << 20; // 1 MiB of text
    public const int MaxDepth = 32;

    /// <summary>Parses one JSON value; throws FormatException when it is not valid JSON.</summary>
    public static object Parse(string text)
    {
        if (text.Length > MaxChars)
            throw new FormatException("JSON over " + MaxChars + " characters");
        var p = new Parser(text);
        p.SkipSpace();
        object v = p.Value(0);
        p.SkipSpace();
        if (p.Pos != text.Length)
            throw p.Error("trailing characters");
        return v;
    }

    /// <summary>Parses a JSON object; throws FormatException for anything else.</summary>
    public static Dictionary<string, object> ParseObject(string text)
    {
        var o = Parse(text) as Dictionary<string, object>;
        if (o == null)
            throw new FormatException("not a JSON object");
        return o;
    }

    /// <summary>A string member of an object, or def when absent or not a string.</summary>
    public static string Str(Dictionary<string, object> o, string key, string def)
    {
        object v;
        return o.TryGetValue(key, out v) && v is string ? (string)v : def;
    }

    /// <summary>Builds an object from alternating keys and values: Json.Obj("result", true).</summary>
    public static Dictionary<string, object> Obj(params object[] kv)
    {
        var d = new Dictionary<string, object>();
        for (int i = 0; i + 1 < kv.Length; i += 2)
            d[(string)kv[i]] = kv[i + 1];
        return d;
    }

    sealed class Parser
    {
        readonly string s;
        public int Pos;

        public Parser(string s) { this.s = s; }

        public FormatException Error(string what)
        {
            return new FormatException("bad JSON at " + Pos + ": " + what);
        }

        public void SkipSpace()
        {
            while (Pos < s.Length && (s[Pos] == ' ' || s[Pos] == '\t' || s[Pos] == '\n' || s[Pos] == '\r'))
                Pos++;
        }

        public object Value(int depth)
        {
            if (depth > MaxDepth)
                throw Error("nested deeper than " + MaxDepth);
            if (Pos >= s.Length)
                throw Error("unexpected end");
            switch (s[Pos]) {
            case '{': return Object(depth);
            case '[': return Array(depth);
            case '"': return String();
            case 't': return Literal("true", true);
            case 'f': return Literal("false", false);
            case 'n': return Literal("null", null);
            default: return Number();
            }
        }

        object Literal(string word, object v)
        {
            if (string.CompareOrdinal(s, Pos, word, 0, word.Length) != 0)
                throw Error("unknown literal");
            Pos += word.Length;
            return v;
        }

        void Expect(char c)
        {
            if (Pos >= s.Length || s[Pos] != c)
                throw Error("expected '" + c + "'");
            Pos++;
        }

        Dictionary<string, object> Object(int depth)
        {
            var o = new Dictionary<string, object>();
            Pos++; // '{'
            SkipSpace();
            if (Pos < s.Length && s[Pos] == '}') { Pos++; return o; }
            while (true) {
                SkipSpace();
                if (Pos >= s.Length || s[Pos] != '"')
                    throw Error("expected a member name");
                string key = String();
                SkipSpace();
                Expect(':');
                SkipSpace();
                o[key] = Value(depth + 1);
                SkipSpace();
                if (Pos < s.Length && s[Pos] == ',') { Pos++; continue; }
                Expect('}');
                return o;
            }
        }

        List<object> Array(int depth)
        {
            var a = new List<object>();
            Pos++; // '['
            SkipSpace();
            if (Pos < s.Length && s[Pos] == ']') { Pos++; return a; }
            while (true) {
                SkipSpace();
                a.Add(Value(depth + 1));
                SkipSpace();
                if (Pos < s.Length && s[Pos] == ',') { Pos++; continue; }
                Expect(']');
                return a;
            }
        }

        string String()
        {
            var b = new StringBuilder();
            Pos++; // opening quote
            while (true) {
                if (Pos >= s.Length)
                    throw Error("unterminated string");
                char c = s[Pos++];
                if (c == '"')
                    return b.ToString();
                if (c < 0x20)
                    throw Error("control character in a string");
                if (c != '\\') { b.Append(c); continue; }
                if (Pos >= s.Length)
                    throw Error("unterminated escape");
                char e = s[Pos++];
                switch (e) {
                case '"': b.Append('"'); break;
                case '\\': b.Append('\\'); break;
                case '/': b.Append('/'); break;
                case 'b': b.Append('\b'); break;
                case 'f': b.Append('\f'); break;
                case 'n': b.Append('\n'); break;
                case 'r': b.Append('\r'); break;
                case 't': b.Append('\t'); break;
                case 'u':
                    int code;
                    if (Pos + 4 > s.Length || !int.TryParse(s.Substring(Pos, 4), NumberStyles.AllowHexSpecifier,
                                                            CultureInfo.InvariantCulture, out code))
                        throw Error("bad \\u escape");
                    b.Append((char)code); // UTF-16: a surrogate pair is two escapes appended
                    Pos += 4;
                    break;
                default:
                    throw Error("unknown escape");
                }
            }
        }

        object Number()
        {
            int start = Pos;
            while (Pos < s.Length && "+-0123456789.eE".IndexOf(s[Pos]) >= 0)
                Pos++;
            string t = s.Substring(start, Pos - start);
            if (t.Length == 0)
                throw Error("unexpected character");
            long l;
            if (t.IndexOfAny(new[] { '.', 'e', 'E' }) < 0 &&
                long.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l))
                return l;
            double d;
            if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out d))
                throw Error("bad number");
            return d;
        }
    }

    /// <summary>Writes a value (the types Parse returns, plus int and other numbers) as compact JSON.</summary>
    public static string Write(object v)
    {
        var b = new StringBuilder();
        Write(b, v);
        return b.ToString();
    }

    static void Write(StringBuilder b, object v)
    {
        if (v == null) {
            b.Append("null");
        } else if (v is string) {
            Quote(b, (string)v);
        } else if (v is bool) {
            b.Append((bool)v ? "true" : "false");
        } else if (v is double || v is float) {
            double d = Convert.ToDouble(v, CultureInfo.InvariantCulture);
            if (double.IsNaN(d) || double.IsInfinity(d))
                b.Append("null"); // JSON has no NaN or infinity
            else
                b.Append(d.ToString("R", CultureInfo.InvariantCulture));
        } else if (v is int || v is long || v is short || v is byte || v is uint || v is ulong || v is decimal) {
            b.Append(Convert.ToString(v, CultureInfo.InvariantCulture));
        } else if (v is IDictionary) {
            b.Append('{');
            bool first = true;
            foreach (DictionaryEntry e in (IDictionary)v) {
                if (!first) b.Append(',');
                first = false;
                Quote(b, Convert.ToString(e.Key, CultureInfo.InvariantCulture));
                b.Append(':');
                Write(b, e.Value);
            }
            b.Append('}');
        } else if (v is IEnumerable) {
            b.Append('[');
            bool first = true;
            foreach (object o in (IEnumerable)v) {
                if (!first) b.Append(',');
                first = false;
                Write(b, o);
            }
            b.Append(']');
        } else {
            throw new ArgumentException("cannot write " + v.GetType().Name + " as JSON");
        }
    }

    static void Quote(StringBuilder b, string str)
    {
        b.Append('"');
        foreach (char c in str) {
            switch (c) {
            case '"': b.Append("\\\""); break;
            case '\\': b.Append("\\\\"); break;
            case '\n': b.Append("\\n"); break;
            case '\r': b.Append("\\r"); break;
            case '\t': b.Append("\\t"); break;
            default:
                if (c < 0x20)
                    b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                else
                    b.Append(c);
                break;
            }
        }
        b.Append('"');
    }
}
