/*
 * Scale-rule expressions (docs/autoscaling.md "Expressions"): the small
 * language of Red5 SM 2.0's `outExpression` / `inExpression`, e.g.
 * `avg(cpu.process.load) > 95.0 || max(connections) >= 400`, parsed once
 * into a fixed array of nodes and evaluated over the nodes of one role in
 * one subgroup at each autoscaler tick.
 *
 * Grammar (whitespace between tokens is free):
 *   expr    := or
 *   or      := and ('||' and)*          and := cmp ('&&' cmp)*
 *   cmp     := sum (('>'|'>='|'<'|'<='|'=='|'!=') sum)?
 *   sum     := prod (('+'|'-') prod)*   prod := unary (('*'|'/') unary)*
 *   unary   := ('!'|'-') unary | primary
 *   primary := number | 'true' | 'false' | '(' expr ')'
 *            | agg '(' metric ')' | 'count' '(' ')'
 *   agg     := avg | max | min | sum | count
 * Metrics are the fields of a node's load report (sl_as_metric_name lists
 * them). A bare metric outside an aggregate is refused: it would have no
 * single value over several nodes.
 *
 * Safe by construction: the text is capped (SL_AS_EXPR_TEXT_MAX), the tree
 * lives in a fixed array (SL_AS_EXPR_NODES_MAX nodes) and recursion is
 * capped (SL_AS_EXPR_DEPTH_MAX), nothing is allocated, evaluation is a
 * bounded walk with no undefined arithmetic (x/0 is 0, NaN compares false).
 * Fuzzed by tests/fuzz/as_expr_fuzz.c.
 */
#ifndef SL_CLUSTER_AUTOSCALE_AS_EXPR_H
#define SL_CLUSTER_AUTOSCALE_AS_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "app/svc/cluster.h"

#define SL_AS_EXPR_TEXT_MAX 512   /* bytes of expression text */
#define SL_AS_EXPR_NODES_MAX 48   /* tree nodes (numbers, operators, aggregates) */
#define SL_AS_EXPR_DEPTH_MAX 16   /* nesting of parentheses and unary operators */

/* The metrics an aggregate can read from a node's load report. */
typedef enum {
    SL_AS_M_CPU = 0,        /* cpu.process.load: percent of one machine */
    SL_AS_M_MEM,            /* memory.load: RSS, percent of the machine's memory */
    SL_AS_M_CONNECTIONS,    /* connections: every session */
    SL_AS_M_PUBLISHERS,     /* publishers */
    SL_AS_M_SUBSCRIBERS,    /* subscribers */
    SL_AS_M_STREAMS,        /* streams: live streams in the node's hub */
    SL_AS_M_BW_IN,          /* bandwidth.in: bytes/s */
    SL_AS_M_BW_OUT,         /* bandwidth.out: bytes/s */
    SL_AS_M_BW,             /* bandwidth: in + out, bytes/s */
    SL_AS_M_CAPACITY,       /* capacity: max_connections (0 = unknown) */
    SL_AS_M_CONN_LOAD,      /* connections.load: connections / capacity in percent (0 when unknown) */
    SL_AS_M_COUNT_          /* number of metrics */
} sl_as_metric_t;

typedef enum {
    SL_AS_X_NUM = 0, SL_AS_X_AGG, SL_AS_X_NEG, SL_AS_X_NOT,
    SL_AS_X_ADD, SL_AS_X_SUB, SL_AS_X_MUL, SL_AS_X_DIV,
    SL_AS_X_GT, SL_AS_X_GE, SL_AS_X_LT, SL_AS_X_LE, SL_AS_X_EQ, SL_AS_X_NE,
    SL_AS_X_AND, SL_AS_X_OR,
} sl_as_xop_t;

typedef enum { SL_AS_AGG_AVG = 0, SL_AS_AGG_MAX, SL_AS_AGG_MIN, SL_AS_AGG_SUM, SL_AS_AGG_COUNT } sl_as_agg_t;

/* One tree node; children are indexes into the same array. */
typedef struct sl_as_xnode {
    uint8_t op;                   /* sl_as_xop_t */
    uint8_t agg;                  /* SL_AS_X_AGG: sl_as_agg_t */
    uint8_t metric;               /* SL_AS_X_AGG: sl_as_metric_t (unused for count()) */
    int16_t a, b;                 /* operands (-1 = none) */
    double num;                   /* SL_AS_X_NUM */
} sl_as_xnode_t;

/* A parsed expression: caller-allocated, no memory owned (copy it freely). */
typedef struct sl_as_expr {
    sl_as_xnode_t n[SL_AS_EXPR_NODES_MAX];
    int n_nodes;
    int root;                     /* -1: the empty expression (never true) */
} sl_as_expr_t;

/**
 * Parses text (len bytes, untrusted, need not be NUL-terminated) into *out.
 * Empty or all-blank text gives the empty expression (evaluates to 0,
 * never true). Returns 0; SL_ETOOBIG (text over SL_AS_EXPR_TEXT_MAX or
 * more than SL_AS_EXPR_NODES_MAX nodes); SL_EDEPTH (nested too deep);
 * SL_EINVAL with *why (static) and *at (byte offset) set (a syntax error,
 * an unknown function or metric, a bare metric). Nothing is allocated.
 */
int sl_as_expr_parse(const char *text, size_t len, sl_as_expr_t *out, const char **why,
                     size_t *at);

/**
 * Evaluates e over nodes[0..n) (borrowed). Aggregates of zero nodes are 0
 * (count() is n). Comparisons and logic give 0 or 1. Never fails.
 */
double sl_as_expr_eval(const sl_as_expr_t *e, const sl_cluster_node_t *const *nodes, size_t n);

/** 1 when e evaluates to non-zero over the nodes (the empty expression never does). */
int sl_as_expr_true(const sl_as_expr_t *e, const sl_cluster_node_t *const *nodes, size_t n);

/** A metric's value on one node. */
double sl_as_metric_value(const sl_cluster_node_t *node, sl_as_metric_t m);

/** The canonical name of metric m ("cpu.process.load", ...), or NULL past the last. */
const char *sl_as_metric_name(int m);

#endif
