/*
 * Scale-rule expressions (as_expr.h): a recursive-descent parser into a
 * fixed node array, and its evaluator. Every recursion passes through
 * parse_unary, which counts depth, so a hostile text of a million '(' is
 * refused after SL_AS_EXPR_DEPTH_MAX levels (and first by the text cap).
 */
#include "cluster/autoscale/as_expr.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/errors.h"

/* Metric names: the canonical one first, then the aliases Red5 users write. */
static const struct {
    const char *name;
    sl_as_metric_t m;
} g_metrics[] = {
    {"cpu.process.load", SL_AS_M_CPU},
    {"memory.load", SL_AS_M_MEM},
    {"connections", SL_AS_M_CONNECTIONS},
    {"publishers", SL_AS_M_PUBLISHERS},
    {"subscribers", SL_AS_M_SUBSCRIBERS},
    {"streams", SL_AS_M_STREAMS},
    {"bandwidth.in", SL_AS_M_BW_IN},
    {"bandwidth.out", SL_AS_M_BW_OUT},
    {"bandwidth", SL_AS_M_BW},
    {"capacity", SL_AS_M_CAPACITY},
    {"connections.load", SL_AS_M_CONN_LOAD},
    /* aliases */
    {"cpu.load", SL_AS_M_CPU},
    {"cpu", SL_AS_M_CPU},
    {"mem.load", SL_AS_M_MEM},
    {"memory", SL_AS_M_MEM},
    {"connections.clients", SL_AS_M_CONNECTIONS},
    {"clients", SL_AS_M_CONNECTIONS},
    {"connections.publishers", SL_AS_M_PUBLISHERS},
    {"connections.subscribers", SL_AS_M_SUBSCRIBERS},
    {"streams.count", SL_AS_M_STREAMS},
};

typedef struct parser {
    const char *s;
    size_t len, pos;
    int depth;
    sl_as_expr_t *e;
    const char *why;
    int rc;
} parser_t;

const char *sl_as_metric_name(int m)
{
    for (size_t i = 0; i < sizeof g_metrics / sizeof g_metrics[0]; i++)
        if ((int)g_metrics[i].m == m)
            return g_metrics[i].name;
    return NULL;
}

double sl_as_metric_value(const sl_cluster_node_t *nd, sl_as_metric_t m)
{
    switch (m) {
    case SL_AS_M_CPU: return nd->cpu_load;
    case SL_AS_M_MEM: return nd->mem_load;
    case SL_AS_M_CONNECTIONS: return nd->connections;
    case SL_AS_M_PUBLISHERS: return nd->publishers;
    case SL_AS_M_SUBSCRIBERS: return nd->subscribers;
    case SL_AS_M_STREAMS: return nd->streams;
    case SL_AS_M_BW_IN: return (double)nd->bytes_in_rate;
    case SL_AS_M_BW_OUT: return (double)nd->bytes_out_rate;
    case SL_AS_M_BW: return (double)nd->bytes_in_rate + (double)nd->bytes_out_rate;
    case SL_AS_M_CAPACITY: return nd->max_connections;
    case SL_AS_M_CONN_LOAD:
        return nd->max_connections ? 100.0 * nd->connections / nd->max_connections : 0.0;
    default: return 0.0;
    }
}

static int fail(parser_t *p, int rc, const char *why)
{
    if (!p->rc) {
        p->rc = rc;
        p->why = why;
    }
    return -1;
}

static void skip_ws(parser_t *p)
{
    while (p->pos < p->len && isspace((unsigned char)p->s[p->pos]))
        p->pos++;
}

/* Consumes tok (after blanks) when it comes next. */
static int eat(parser_t *p, const char *tok)
{
    skip_ws(p);
    size_t n = strlen(tok);
    if (p->len - p->pos >= n && memcmp(p->s + p->pos, tok, n) == 0) {
        p->pos += n;
        return 1;
    }
    return 0;
}

static int add_node(parser_t *p, sl_as_xop_t op, int a, int b)
{
    if (p->e->n_nodes >= SL_AS_EXPR_NODES_MAX)
        return fail(p, SL_ETOOBIG, "expression too long (too many terms)");
    int i = p->e->n_nodes++;
    sl_as_xnode_t *x = &p->e->n[i];
    memset(x, 0, sizeof *x);
    x->op = (uint8_t)op;
    x->a = (int16_t)a;
    x->b = (int16_t)b;
    return i;
}

/* An identifier: letters, digits, '_' and '.' (metric names have dots). */
static size_t ident(parser_t *p, char *out, size_t cap)
{
    skip_ws(p);
    size_t n = 0;
    while (p->pos + n < p->len) {
        char c = p->s[p->pos + n];
        if (!(isalnum((unsigned char)c) || c == '_' || c == '.'))
            break;
        n++;
    }
    if (n == 0 || n >= cap || isdigit((unsigned char)p->s[p->pos]) || p->s[p->pos] == '.')
        return 0;
    memcpy(out, p->s + p->pos, n);
    out[n] = '\0';
    p->pos += n;
    return n;
}

static int parse_or(parser_t *p);

static int parse_number(parser_t *p)
{
    char buf[64];
    size_t n = 0;
    while (p->pos + n < p->len && n < sizeof buf - 1) {
        char c = p->s[p->pos + n];
        if (!(isdigit((unsigned char)c) || c == '.' || c == 'e' || c == 'E' ||
              ((c == '+' || c == '-') && n > 0 && (buf[n - 1] == 'e' || buf[n - 1] == 'E'))))
            break;
        buf[n++] = c;
    }
    buf[n] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    if (n == 0 || end != buf + n || !isfinite(v))
        return fail(p, SL_EINVAL, "bad number");
    p->pos += n;
    int i = add_node(p, SL_AS_X_NUM, -1, -1);
    if (i >= 0)
        p->e->n[i].num = v;
    return i;
}

static int parse_primary(parser_t *p)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, SL_EINVAL, "unexpected end of expression");
    char c = p->s[p->pos];
    if (isdigit((unsigned char)c) || c == '.')
        return parse_number(p);
    if (c == '(') {
        p->pos++;
        int i = parse_or(p);
        if (i < 0)
            return -1;
        if (!eat(p, ")"))
            return fail(p, SL_EINVAL, "missing ')'");
        return i;
    }
    char name[64];
    size_t at = p->pos;
    if (!ident(p, name, sizeof name))
        return fail(p, SL_EINVAL, "expected a number, an aggregate or '('");
    if (strcmp(name, "true") == 0 || strcmp(name, "false") == 0) {
        int i = add_node(p, SL_AS_X_NUM, -1, -1);
        if (i >= 0)
            p->e->n[i].num = name[0] == 't';
        return i;
    }
    static const char *const aggs[] = {"avg", "max", "min", "sum", "count"};
    int agg = -1;
    for (int k = 0; k < 5; k++)
        if (strcmp(name, aggs[k]) == 0)
            agg = k;
    if (agg < 0) {
        p->pos = at;
        for (size_t k = 0; k < sizeof g_metrics / sizeof g_metrics[0]; k++)
            if (strcmp(name, g_metrics[k].name) == 0)
                return fail(p, SL_EINVAL, "a metric must be inside avg(), max(), min(), sum()");
        return fail(p, SL_EINVAL, "unknown function (avg, max, min, sum, count)");
    }
    if (!eat(p, "("))
        return fail(p, SL_EINVAL, "expected '(' after the aggregate");
    int metric = SL_AS_M_CONNECTIONS;
    skip_ws(p);
    if (agg == SL_AS_AGG_COUNT && eat(p, ")")) {
        /* count(): the number of nodes */
    } else {
        at = p->pos;
        metric = -1;
        if (ident(p, name, sizeof name))
            for (size_t k = 0; k < sizeof g_metrics / sizeof g_metrics[0]; k++)
                if (strcmp(name, g_metrics[k].name) == 0)
                    metric = (int)g_metrics[k].m;
        if (metric < 0) {
            p->pos = at;
            return fail(p, SL_EINVAL, "unknown metric");
        }
        if (!eat(p, ")"))
            return fail(p, SL_EINVAL, "missing ')' after the metric");
    }
    int i = add_node(p, SL_AS_X_AGG, -1, -1);
    if (i >= 0) {
        p->e->n[i].agg = (uint8_t)agg;
        p->e->n[i].metric = (uint8_t)metric;
    }
    return i;
}

static int parse_unary(parser_t *p)
{
    if (++p->depth > SL_AS_EXPR_DEPTH_MAX)
        return fail(p, SL_EDEPTH, "expression nested too deep");
    int i;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '!' &&
        !(p->pos + 1 < p->len && p->s[p->pos + 1] == '=')) {
        p->pos++;
        int a = parse_unary(p);
        i = a < 0 ? -1 : add_node(p, SL_AS_X_NOT, a, -1);
    } else if (p->pos < p->len && p->s[p->pos] == '-') {
        p->pos++;
        int a = parse_unary(p);
        i = a < 0 ? -1 : add_node(p, SL_AS_X_NEG, a, -1);
    } else {
        i = parse_primary(p);
    }
    p->depth--;
    return i;
}

static int parse_prod(parser_t *p)
{
    int a = parse_unary(p);
    while (a >= 0) {
        sl_as_xop_t op;
        if (eat(p, "*"))
            op = SL_AS_X_MUL;
        else if (eat(p, "/"))
            op = SL_AS_X_DIV;
        else
            break;
        int b = parse_unary(p);
        a = b < 0 ? -1 : add_node(p, op, a, b);
    }
    return a;
}

static int parse_sum(parser_t *p)
{
    int a = parse_prod(p);
    while (a >= 0) {
        sl_as_xop_t op;
        if (eat(p, "+"))
            op = SL_AS_X_ADD;
        else if (eat(p, "-"))
            op = SL_AS_X_SUB;
        else
            break;
        int b = parse_prod(p);
        a = b < 0 ? -1 : add_node(p, op, a, b);
    }
    return a;
}

static int parse_cmp(parser_t *p)
{
    int a = parse_sum(p);
    if (a < 0)
        return -1;
    sl_as_xop_t op;
    if (eat(p, ">="))
        op = SL_AS_X_GE;
    else if (eat(p, "<="))
        op = SL_AS_X_LE;
    else if (eat(p, "=="))
        op = SL_AS_X_EQ;
    else if (eat(p, "!="))
        op = SL_AS_X_NE;
    else if (eat(p, ">"))
        op = SL_AS_X_GT;
    else if (eat(p, "<"))
        op = SL_AS_X_LT;
    else
        return a;
    int b = parse_sum(p);
    return b < 0 ? -1 : add_node(p, op, a, b);
}

static int parse_and(parser_t *p)
{
    int a = parse_cmp(p);
    while (a >= 0 && eat(p, "&&")) {
        int b = parse_cmp(p);
        a = b < 0 ? -1 : add_node(p, SL_AS_X_AND, a, b);
    }
    return a;
}

static int parse_or(parser_t *p)
{
    int a = parse_and(p);
    while (a >= 0 && eat(p, "||")) {
        int b = parse_and(p);
        a = b < 0 ? -1 : add_node(p, SL_AS_X_OR, a, b);
    }
    return a;
}

int sl_as_expr_parse(const char *text, size_t len, sl_as_expr_t *out, const char **why,
                     size_t *at)
{
    parser_t p = {.s = text, .len = len, .e = out};
    out->n_nodes = 0;
    out->root = -1;
    *why = NULL;
    *at = 0;
    if (len > SL_AS_EXPR_TEXT_MAX) {
        *why = "expression too long";
        return SL_ETOOBIG;
    }
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\0') {
            *why = "NUL byte in expression";
            *at = i;
            return SL_EINVAL;
        }
    skip_ws(&p);
    if (p.pos == len)
        return 0;
    int root = parse_or(&p);
    if (root >= 0) {
        skip_ws(&p);
        if (p.pos != len)
            fail(&p, SL_EINVAL, "unexpected text after the expression");
    }
    if (p.rc) {
        *why = p.why;
        *at = p.pos;
        out->n_nodes = 0;
        return p.rc;
    }
    out->root = root;
    return 0;
}

static double aggregate(const sl_as_xnode_t *x, const sl_cluster_node_t *const *nodes, size_t n)
{
    if (x->agg == SL_AS_AGG_COUNT)
        return (double)n;
    if (n == 0)
        return 0.0;
    double acc = sl_as_metric_value(nodes[0], (sl_as_metric_t)x->metric);
    for (size_t i = 1; i < n; i++) {
        double v = sl_as_metric_value(nodes[i], (sl_as_metric_t)x->metric);
        switch (x->agg) {
        case SL_AS_AGG_MAX: acc = v > acc ? v : acc; break;
        case SL_AS_AGG_MIN: acc = v < acc ? v : acc; break;
        default: acc += v; break;
        }
    }
    return x->agg == SL_AS_AGG_AVG ? acc / (double)n : acc;
}

/*
 * Children always precede their parent in the array (they are added
 * first), so the walk recurses at most as deep as the tree, which the
 * parser capped; an index that is not smaller than its parent's is a
 * corrupted expression and evaluates to 0.
 */
static double eval(const sl_as_expr_t *e, int i, const sl_cluster_node_t *const *nodes, size_t n)
{
    if (i < 0 || i >= e->n_nodes)
        return 0.0;
    const sl_as_xnode_t *x = &e->n[i];
    double a = 0, b = 0;
    if (x->a >= 0 && x->a < i)
        a = eval(e, x->a, nodes, n);
    if (x->b >= 0 && x->b < i && x->op != SL_AS_X_AND && x->op != SL_AS_X_OR)
        b = eval(e, x->b, nodes, n);
    switch ((sl_as_xop_t)x->op) {
    case SL_AS_X_NUM: return x->num;
    case SL_AS_X_AGG: return aggregate(x, nodes, n);
    case SL_AS_X_NEG: return -a;
    case SL_AS_X_NOT: return a == 0.0;
    case SL_AS_X_ADD: return a + b;
    case SL_AS_X_SUB: return a - b;
    case SL_AS_X_MUL: return a * b;
    case SL_AS_X_DIV: return b == 0.0 ? 0.0 : a / b;
    case SL_AS_X_GT: return a > b;
    case SL_AS_X_GE: return a >= b;
    case SL_AS_X_LT: return a < b;
    case SL_AS_X_LE: return a <= b;
    case SL_AS_X_EQ: return a == b;
    case SL_AS_X_NE: return a != b;
    case SL_AS_X_AND: return a != 0.0 && x->b < i && eval(e, x->b, nodes, n) != 0.0;
    case SL_AS_X_OR: return a != 0.0 || (x->b < i && eval(e, x->b, nodes, n) != 0.0);
    }
    return 0.0;
}

double sl_as_expr_eval(const sl_as_expr_t *e, const sl_cluster_node_t *const *nodes, size_t n)
{
    if (e->root < 0)
        return 0.0;
    double v = eval(e, e->root, nodes, n);
    return isfinite(v) ? v : 0.0;
}

int sl_as_expr_true(const sl_as_expr_t *e, const sl_cluster_node_t *const *nodes, size_t n)
{
    return e->root >= 0 && sl_as_expr_eval(e, nodes, n) != 0.0;
}
