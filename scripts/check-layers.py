#!/usr/bin/env python3
"""The layering check: the house stays as DESIGN.md §2 draws it.

Reads every `#include "layer/..."` line under src/ and clients/c/ and fails
when one breaks a rule:
  1. a layer includes a header of a higher layer
     (base, net < media < app < proto < modules, cluster < api; main.c sees all);
  2. a protocol includes another protocol's headers (proto/X -> proto/Y), except
     the HTTP server's route interface, which HTTP-carried endpoints register on,
     and the protocol table (proto/proto.h; proto/protocols.c names each protocol);
  3. a module includes another module's headers (modules/X -> modules/Y), except
     the module table (modules/module.h) and the auth helpers every auth module
     shares (modules/auth_common.h);
  4. the API reaches protocols and modules only through their public seams
     (proto/http for routes, modules/module.h), never a protocol's internals;
  5. the C client library (clients/c/src, clients/c/tools) reaches only base, media
     and the RTMP codec (proto/rtmp/amf*, rtmp_chunk, rtmp_handshake); its tests may
     start a server in-process and are not checked.

Known debts are listed in tests/layers-debt.txt, one `file: include` per line,
each waiting for the extension-interface work (issue "The seams before the next
protocols"). The list can only shrink: a listed line that no longer exists
fails too, so that whoever pays a debt also crosses it off.

Usage: scripts/check-layers.py [repo root]   (exit 0 clean, 1 with the lines)
"""
import os
import re
import sys

RANK = {'base': 0, 'net': 0, 'media': 1, 'app': 2, 'proto': 3, 'modules': 4, 'cluster': 4,
        'api': 5}
INCLUDE = re.compile(r'\s*#\s*include\s+"([a-z]+)/([A-Za-z0-9_]+)(/[A-Za-z0-9_./]+|\.h)"')
SHARED_MODULE_HEADERS = {'module', 'auth_common', 'auth_config'}


def violations(root):
    out = []
    for top in ('src', os.path.join('clients', 'c')):
        for d, _, files in os.walk(os.path.join(root, top)):
            rel = os.path.relpath(d, root).split(os.sep)
            for f in sorted(files):
                if not f.endswith(('.c', '.h')):
                    continue
                path = os.path.join(d, f)
                relpath = os.path.relpath(path, root)
                with open(path, errors='replace') as fh:
                    for line in fh:
                        m = INCLUDE.match(line)
                        if not m or m.group(1) not in RANK:
                            continue
                        why = judge(rel, f, m.group(1), m.group(2), m.group(3))
                        if why:
                            inc = '%s/%s%s' % (m.group(1), m.group(2), m.group(3))
                            out.append(('%s: %s' % (relpath, inc), why))
    return out


CODEC = re.compile(r'/(amf[0-9]?|rtmp_chunk|rtmp_handshake)\.h$')


def judge(rel, fname, layer, sub, inc_tail=None):
    """The broken rule, or None. rel: the including file's folder, split."""
    if rel[0] == 'clients':
        if 'tests' in rel or layer in ('base', 'media'):
            return None
        if layer == 'proto' and sub == 'rtmp' and fname and CODEC.match(inc_tail or ''):
            return None
        return 'the C client links only base, media and the RTMP codec'
    if len(rel) < 2:
        return None  # src/main.c: the process sees every layer
    own = rel[1]
    if own not in RANK:
        return None
    if RANK[layer] > RANK[own]:
        return 'includes a higher layer (%s above %s)' % (layer, own)
    own_sub = rel[2] if len(rel) > 2 else None
    if own == 'proto' and own_sub is None and fname == 'protocols.c':
        return None  # the table of built-in protocols names each one
    if own == 'proto' and layer == 'proto' and sub == 'proto':
        return None  # the protocol table's descriptor (proto/proto.h), every protocol's
    if own == 'proto' and layer == 'proto' and sub != own_sub and sub != 'http':
        return 'a protocol includes another protocol'
    if own == 'proto' and layer == 'proto' and sub == 'http' and own_sub != 'http':
        return 'a protocol includes the HTTP server (use the route service)'
    if own == 'modules' and own_sub is None and fname == 'modules.c':
        return None  # the table of built-in modules names each one
    if own == 'modules' and layer == 'modules' and sub != own_sub \
            and sub not in SHARED_MODULE_HEADERS:
        return 'a module includes another module'
    if own == 'cluster' and layer == 'cluster' and sub != own_sub:
        return 'a cluster module includes another cluster module (use its service)'
    if own == 'cluster' and layer == 'modules' and sub not in SHARED_MODULE_HEADERS:
        return 'a cluster module includes a module (use its service)'
    if own == 'modules' and layer == 'cluster' and not (own_sub is None and fname == 'modules.c'):
        return 'a module includes a cluster module (use its service)'
    if own == 'api' and layer == 'proto' and sub != 'http':
        return "the API includes a protocol's internals"
    if own == 'api' and layer == 'modules' and sub not in SHARED_MODULE_HEADERS:
        return "the API includes a module's internals"
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    debt_file = os.path.join(root, 'tests', 'layers-debt.txt')
    debt = set()
    if os.path.exists(debt_file):
        with open(debt_file) as fh:
            debt = {l.strip() for l in fh if l.strip() and not l.startswith('#')}
    found = violations(root)
    seen = {k for k, _ in found}
    bad = [(k, why) for k, why in found if k not in debt]
    paid = sorted(debt - seen)
    for k, why in bad:
        print('layers: %s  <- %s' % (k, why))
    for k in paid:
        print('layers: %s  <- listed in tests/layers-debt.txt but gone: cross it off' % k)
    if bad or paid:
        return 1
    print('layers: the includes hold to DESIGN.md (%d known debts in tests/layers-debt.txt)'
          % len(debt))
    return 0


if __name__ == '__main__':
    sys.exit(main())
