/*
 * Json: a tiny JSON reader and writer for the shapes the examples exchange with sluice
 * (webhook payloads, round-trip bodies, RPC calls, Server API envelopes).
 *
 * The JDK has no JSON library, and these examples use nothing outside the JDK. If your
 * project already has Jackson or Gson, use that instead: only this file changes.
 *
 * Mapping: object -> LinkedHashMap<String, Object> (member order kept), array ->
 * ArrayList<Object>, string -> String, number -> Long when it is an integer that fits,
 * else Double, true/false -> Boolean, null -> null.
 *
 * Limits (every parser needs them, this one faces the network): at most MAX_CHARS
 * characters and MAX_DEPTH levels of nesting; anything else throws
 * IllegalArgumentException with the position.
 */
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

final class Json {
    static final int MAX_CHARS = 1 << 20; // 1 MiB of text
    static final int MAX_DEPTH = 32;

    private final String s;
    private int pos;

    private Json(String s) {
        this.s = s;
    }

    /** Parses one JSON value; throws IllegalArgumentException when it is not valid JSON. */
    static Object parse(String text) {
        if (text.length() > MAX_CHARS)
            throw new IllegalArgumentException("JSON over " + MAX_CHARS + " characters");
        Json p = new Json(text);
        p.skipSpace();
        Object v = p.value(0);
        p.skipSpace();
        if (p.pos != text.length())
            throw p.error("trailing characters");
        return v;
    }

    /** Parses a JSON object; throws IllegalArgumentException for anything else. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> parseObject(String text) {
        Object v = parse(text);
        if (!(v instanceof Map))
            throw new IllegalArgumentException("not a JSON object");
        return (Map<String, Object>) v;
    }

    /** A string member of an object, or def when it is absent or not a string. */
    static String str(Map<String, Object> o, String key, String def) {
        Object v = o.get(key);
        return v instanceof String ? (String) v : def;
    }

    private IllegalArgumentException error(String what) {
        return new IllegalArgumentException("bad JSON at " + pos + ": " + what);
    }

    private void skipSpace() {
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
                break;
            pos++;
        }
    }

    private Object value(int depth) {
        if (depth > MAX_DEPTH)
            throw error("nested deeper than " + MAX_DEPTH);
        if (pos >= s.length())
            throw error("unexpected end");
        char c = s.charAt(pos);
        switch (c) {
        case '{':
            return object(depth);
        case '[':
            return array(depth);
        case '"':
            return string();
        case 't':
            return literal("true", Boolean.TRUE);
        case 'f':
            return literal("false", Boolean.FALSE);
        case 'n':
            return literal("null", null);
        default:
            return number();
        }
    }

    private Object literal(String word, Object v) {
        if (!s.startsWith(word, pos))
            throw error("unknown literal");
        pos += word.length();
        return v;
    }

    private Map<String, Object> object(int depth) {
        Map<String, Object> out = new LinkedHashMap<>();
        pos++; // '{'
        skipSpace();
        if (pos < s.length() && s.charAt(pos) == '}') {
            pos++;
            return out;
        }
        while (true) {
            skipSpace();
            if (pos >= s.length() || s.charAt(pos) != '"')
                throw error("expected a member name");
            String key = string();
            skipSpace();
            expect(':');
            skipSpace();
            out.put(key, value(depth + 1));
            skipSpace();
            if (pos < s.length() && s.charAt(pos) == ',') {
                pos++;
                continue;
            }
            expect('}');
            return out;
        }
    }

    private List<Object> array(int depth) {
        List<Object> out = new ArrayList<>();
        pos++; // '['
        skipSpace();
        if (pos < s.length() && s.charAt(pos) == ']') {
            pos++;
            return out;
        }
        while (true) {
            skipSpace();
            out.add(value(depth + 1));
            skipSpace();
            if (pos < s.length() && s.charAt(pos) == ',') {
                pos++;
                continue;
            }
            expect(']');
            return out;
        }
    }

    private void expect(char c) {
        if (pos >= s.length() || s.charAt(pos) != c)
            throw error("expected '" + c + "'");
        pos++;
    }

    private String string() {
        StringBuilder b = new StringBuilder();
        pos++; // opening quote
        while (true) {
            if (pos >= s.length())
                throw error("unterminated string");
            char c = s.charAt(pos++);
            if (c == '"')
                return b.toString();
            if (c < 0x20)
                throw error("control character in a string");
            if (c != '\\') {
                b.append(c);
                continue;
            }
            if (pos >= s.length())
                throw error("unterminated escape");
            char e = s.charAt(pos++);
            switch (e) {
            case '"': b.append('"'); break;
            case '\\': b.append('\\'); break;
            case '/': b.append('/'); break;
            case 'b': b.append('\b'); break;
            case 'f': b.append('\f'); break;
            case 'n': b.append('\n'); break;
            case 'r': b.append('\r'); break;
            case 't': b.append('\t'); break;
            case 'u':
                if (pos + 4 > s.length())
                    throw error("short \\u escape");
                try {
                    // Java strings are UTF-16, so a surrogate pair is just two escapes appended.
                    b.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
                } catch (NumberFormatException x) {
                    throw error("bad \\u escape");
                }
                pos += 4;
                break;
            default:
                throw error("unknown escape");
            }
        }
    }

    private Object number() {
        int start = pos;
        while (pos < s.length() && "+-0123456789.eE".indexOf(s.charAt(pos)) >= 0)
            pos++;
        String t = s.substring(start, pos);
        if (t.isEmpty())
            throw error("unexpected character");
        try {
            if (t.indexOf('.') < 0 && t.indexOf('e') < 0 && t.indexOf('E') < 0 && t.length() < 19)
                return Long.parseLong(t);
            return Double.parseDouble(t);
        } catch (NumberFormatException x) {
            throw error("bad number");
        }
    }

    /** Writes a value (the types parse returns, plus Integer and other Numbers) as compact JSON. */
    static String write(Object v) {
        StringBuilder b = new StringBuilder();
        write(b, v);
        return b.toString();
    }

    private static void write(StringBuilder b, Object v) {
        if (v == null) {
            b.append("null");
        } else if (v instanceof String) {
            quote(b, (String) v);
        } else if (v instanceof Boolean) {
            b.append(v.toString());
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d))
                b.append("null"); // JSON has no NaN or infinity
            else if (d == Math.rint(d) && Math.abs(d) < 1e15)
                b.append((long) d); // 6.0 -> 6, as JavaScript would write it
            else
                b.append(d);
        } else if (v instanceof Number) {
            b.append(v.toString());
        } else if (v instanceof Map) {
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first)
                    b.append(',');
                first = false;
                quote(b, String.valueOf(e.getKey()));
                b.append(':');
                write(b, e.getValue());
            }
            b.append('}');
        } else if (v instanceof List) {
            b.append('[');
            boolean first = true;
            for (Object o : (List<?>) v) {
                if (!first)
                    b.append(',');
                first = false;
                write(b, o);
            }
            b.append(']');
        } else {
            throw new IllegalArgumentException("cannot write " + v.getClass().getName() + " as JSON");
        }
    }

    private static void quote(StringBuilder b, String str) {
        b.append('"');
        for (int i = 0; i < str.length(); i++) {
            char c = str.charAt(i);
            switch (c) {
            case '"': b.append("\\\""); break;
            case '\\': b.append("\\\\"); break;
            case '\n': b.append("\\n"); break;
            case '\r': b.append("\\r"); break;
            case '\t': b.append("\\t"); break;
            default:
                if (c < 0x20)
                    b.append(String.format("\\u%04x", (int) c));
                else
                    b.append(c);
            }
        }
        b.append('"');
    }

    /** Builds a map from alternating keys and values: Json.obj("result", true). */
    static Map<String, Object> obj(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2)
            m.put((String) kv[i], kv[i + 1]);
        return m;
    }
}
