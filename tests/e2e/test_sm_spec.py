"""docs/streammanager-openapi.yaml names every route the stream manager, its proxy and the
autoscaler serve (src/cluster/{streammanager,smproxy,autoscale}); no server needed.

Read from the sources, so that a route added without its spec entry fails here:
  - every HTTP route prefix they register (`.prefix = ...`, `#define ..._PREFIX "/..."` used
    as one) has spec paths under it;
  - every literal path segment their dispatchers compare against (strcmp(seg[i], "x"),
    s->s[i] / s.s[i], the proxy's kinds) is a segment of some spec path under those prefixes;
  - and the other way: every spec path starts with a registered prefix (no stale entry).
"""
import re

import yaml

from conftest import REPO

SRC = [REPO / "src" / "cluster" / d for d in ("streammanager", "smproxy", "autoscale")]
SPEC = yaml.safe_load((REPO / "docs" / "streammanager-openapi.yaml").read_text())
# Segments compared in the dispatchers that are not path segments (methods, query values,
# roles and states read from records, JSON keys).
NOT_PATHS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "true", "false", "1",
             "broadcast", "subscribe", "healthy", "unhealthy", "any", "default", "INSERVICE",
             "origin", "edge", "relay", "transcoder", "all", "websocket", "https", "HARD_SUNSET",
             "SOFT_SUNSET", "admin", "proxy", "..", ".", "/", ""}


def sources():
    for d in SRC:
        for f in sorted(d.glob("*.c")) + sorted(d.glob("*.h")):
            yield f, f.read_text()


def defines():
    out = {}
    for _, text in sources():
        for name, val in re.findall(r'#define\s+(\w+)\s+"([^"]*)"', text):
            out[name] = val
    return out


def registered_prefixes():
    d = defines()
    found = set()
    for f, text in sources():
        # .prefix = SM4_PREFIX "/event" | .prefix = "/as/v1/auth" | routes table {SM2_PREFIX, ...}
        exprs = re.findall(r'\.prefix\s*=\s*((?:\w+\s*)?(?:"[^"]*"\s*)*)', text)
        exprs += re.findall(r'\{\s*(SM\w*_PREFIX)\s*,\s*"', text)
        for e in exprs:
            parts = re.findall(r'"([^"]*)"|(\w+)', e)
            if any(name and not name.isupper() for _, name in parts):
                continue  # a table's field (routes[i].prefix): the table is read below
            val = "".join(lit if lit else d.get(name, "\0" + name) for lit, name in parts)
            if val.startswith("/"):
                found.add(val)
            elif val.strip():
                assert "\0" not in val, "%s: prefix %r not resolved" % (f.name, e)
    return found


def compared_segments():
    segs = set()
    pat = re.compile(r'strn?cmp\(\s*(?:seg\[\d\]|s->s\[[^\]]+\]|s\.s\[[^\]]+\]|kind)\s*,\s*"([^"]+)"')
    for _, text in sources():
        segs.update(pat.findall(text))
    return segs - NOT_PATHS


def spec_paths():
    return list(SPEC["paths"])


def test_every_registered_prefix_is_in_the_spec():
    prefixes = registered_prefixes()
    assert len(prefixes) >= 12, prefixes  # the parse above found the routes
    missing = [p for p in sorted(prefixes) if not any(sp.startswith(p) for sp in spec_paths())]
    assert not missing, "routes served but not in docs/streammanager-openapi.yaml: %s" % missing


def test_every_dispatched_segment_is_in_the_spec():
    segs = compared_segments()
    assert {"stats", "sunset", "meta", "join", "resize", "manualscale", "pause"} <= segs, segs
    in_spec = {s for p in spec_paths() for s in p.strip("/").split("/")}
    missing = sorted(segs - in_spec)
    assert not missing, "sub-routes dispatched but in no spec path: %s" % missing


def test_every_spec_path_is_served():
    prefixes = registered_prefixes()
    stale = [p for p in spec_paths() if not any(p.startswith(x) for x in prefixes)]
    assert not stale, "spec paths no module registers: %s" % stale


def test_every_operation_documents_its_answers():
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            assert op.get("responses"), "%s %s: no responses" % (method, path)
