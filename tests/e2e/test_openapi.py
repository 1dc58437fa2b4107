"""docs/openapi.yaml against the running server: every path and method of the spec is
called on a live server (ffmpeg publishing live/stream1, an rtmpdump player, a
webhook endpoint so that deliveries exist), and

  - every response status must be one the spec lists for that operation;
  - every JSON body must validate against the operation's response schema
    (OpenAPI 3.0 converted to JSON Schema: $ref resolved, `nullable` translated);
  - every field the server sends must be documented (no undocumented fields);
  - the same walk without a token must give the documented 401;
  - every route the server answers under /api/v1 (the list below, kept by hand
    from src/api and the modules) must be in the spec.

State-changing operations (the DELETEs and action/unpublish) run last, on a second
stream (live/stream2) with players of its own, so that the read-only walk sees
real values for every parameter.
"""

import copy
import http.server
import os
import re
import shutil
import socket
import subprocess
import threading

import jsonschema
import pytest
import yaml

from api_helpers import (Api, http_port_of, start_api_server, start_player, start_publisher,
                         wait_subscribers)
from conftest import HOST, REPO, T, wait_until

SPEC_PATH = REPO / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# Every route the server answers, as (method, spec path). Kept by hand from
# src/api/api.c, api_stats.c and the modules' sl_api_add_route handlers: a new
# route goes here and into docs/openapi.yaml in the same change.
KNOWN_ROUTES = [
    ("get", "/api/v1/server"),
    ("get", "/api/v1/server/ping"),
    ("get", "/api/v1/server/statistics"),
    ("get", "/api/v1/server/routes"),
    ("post", "/api/v1/server/reload"),
    ("get", "/api/v1/server/services"),
    ("get", "/api/v1/server/plugins"),
    ("get", "/api/v1/applications"),
    ("get", "/api/v1/applications/statistics"),
    ("get", "/api/v1/applications/{app}"),
    ("post", "/api/v1/applications/{app}/invoke"),
    ("post", "/api/v1/applications/{app}/invoke/clients"),
    ("post", "/api/v1/applications/{app}/clients/{clientId}/invoke"),
    ("get", "/api/v1/applications/{app}/streams"),
    ("get", "/api/v1/applications/{app}/streams/{stream}"),
    ("get", "/api/v1/applications/{app}/streams/{stream}/subscribers"),
    ("delete", "/api/v1/applications/{app}/streams/{stream}/subscribers/{clientId}"),
    ("get", "/api/v1/applications/{app}/streams/{stream}/action/unpublish"),
    ("get", "/api/v1/applications/{app}/streams/{stream}/action/startrecord"),
    ("get", "/api/v1/applications/{app}/streams/{stream}/action/stoprecord"),
    ("get", "/api/v1/applications/{app}/clients"),
    ("delete", "/api/v1/applications/{app}/clients"),
    ("get", "/api/v1/applications/{app}/clients/{clientId}"),
    ("delete", "/api/v1/applications/{app}/clients/{clientId}"),
    ("get", "/api/v1/applications/{app}/sharedobjects"),
    ("get", "/api/v1/applications/{app}/sharedobjects/{soname}"),
    ("get", "/api/v1/applications/{app}/sharedobjects/{soname}/data"),
    ("put", "/api/v1/applications/{app}/sharedobjects/{soname}/data"),
    ("delete", "/api/v1/applications/{app}/sharedobjects/{soname}/data"),
    ("delete", "/api/v1/applications/{app}/sharedobjects/{soname}/data/{key}"),
    ("post", "/api/v1/applications/{app}/sharedobjects/{soname}/send"),
    ("get", "/api/v1/applications/{app}/media"),
    ("delete", "/api/v1/applications/{app}/media"),
    ("get", "/api/v1/webhooks/deliveries"),
    ("get", "/api/v1/webhooks/deliveries/{id}"),
    ("post", "/api/v1/webhooks/deliveries/{id}/redeliver"),
    ("get", "/api/v1/cluster"),
    ("get", "/api/v1/cluster/nodes"),
    ("get", "/api/v1/cluster/nodes/{nodeId}"),
    ("put", "/api/v1/cluster/nodes/{nodeId}/state"),
    ("get", "/api/v1/cluster/streams"),
    ("get", "/api/v1/cluster/settings"),
    ("post", "/api/v1/cluster/kick"),
    ("post", "/api/v1/cluster/unpublish"),
    ("get", "/api/v1/restream/pulls"),
    ("post", "/api/v1/restream/pulls"),
    ("get", "/api/v1/restream/pulls/{app}/{stream}"),
    ("delete", "/api/v1/restream/pulls/{app}/{stream}"),
    ("post", "/api/v1/restream/pulls/{app}/{stream}/source"),
    ("get", "/api/v1/restream/pushes"),
    ("post", "/api/v1/restream/pushes"),
    ("get", "/api/v1/restream/pushes/{id}"),
    ("delete", "/api/v1/restream/pushes/{id}"),
    ("get", "/api/v1/abr/provisions"),
    ("post", "/api/v1/abr/provisions"),
    ("get", "/api/v1/abr/provisions/{app}/{stream}"),
    ("delete", "/api/v1/abr/provisions/{app}/{stream}"),
    ("get", "/api/v1/abr/transcoders"),
    ("get", "/api/v1/events"),
    ("get", "/metrics"),
    ("post", "/{app}/restream"),
]

# Operations that change state: run last, against the second stream.
DESTRUCTIVE_ORDER = [
    ("delete", "/api/v1/applications/{app}/streams/{stream}/subscribers/{clientId}"),
    ("delete", "/api/v1/applications/{app}/clients/{clientId}"),
    ("get", "/api/v1/applications/{app}/streams/{stream}/action/unpublish"),
    ("delete", "/api/v1/applications/{app}/media"),
    ("delete", "/api/v1/applications/{app}/clients"),
]

# Sample values for optional query parameters (each gives one more call); enums are
# walked value by value.
QUERY_SAMPLES = {"scope": "room1", "app": "live", "extension": "flv", "saveas": "copy1",
                 "append": "false", "limit": "5", "type": "publish,unpublish",
                 "stream": "stream1", "filename": "stream1.flv"}


# ----------------------------------------------------------------------------
# OpenAPI 3.0 -> JSON Schema
# ----------------------------------------------------------------------------

def load_spec():
    return yaml.safe_load(SPEC_PATH.read_text())


def lookup(spec, ref):
    assert ref.startswith("#/"), "only local $refs are used: %s" % ref
    node = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, "unresolvable $ref %s" % ref
        node = node[part]
    return node


def deref(spec, node):
    """A node with its top-level $ref (chain) followed."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        assert node["$ref"] not in seen, "$ref cycle at %s" % node["$ref"]
        seen.add(node["$ref"])
        node = lookup(spec, node["$ref"])
    return node


OPENAPI_ONLY = {"nullable", "example", "examples", "discriminator", "xml", "externalDocs",
                "deprecated", "readOnly", "writeOnly"}


def to_jsonschema(spec, node, depth=0):
    """OpenAPI 3.0 Schema Object -> JSON Schema (draft 7): $refs inlined, `nullable`
    turned into a "null" type (and a None enum member), OpenAPI-only keywords dropped."""
    assert depth < 64, "schema too deep (recursive $ref?)"
    if isinstance(node, list):
        return [to_jsonschema(spec, x, depth + 1) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return to_jsonschema(spec, deref(spec, node), depth + 1)
    out = {}
    for k, v in node.items():
        if k in OPENAPI_ONLY:
            continue
        if k in ("properties", "patternProperties"):
            out[k] = {pk: to_jsonschema(spec, pv, depth + 1) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[k] = to_jsonschema(spec, v, depth + 1)
        else:
            out[k] = copy.deepcopy(v)
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) \
                else list(out["type"]) + ["null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def documented_fields(schema):
    """(property names, open) of an object schema, through allOf/anyOf/oneOf."""
    names, open_ = set(), False
    if not isinstance(schema, dict):
        return names, True
    names |= set(schema.get("properties", {}))
    if schema.get("additionalProperties") not in (None, False):
        open_ = True
    for k in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(k, []):
            n, o = documented_fields(sub)
            names |= n
            open_ = open_ or o
    return names, open_


def sub_schemas(schema, key, kind):
    """Schemas that apply to schema's property `key` (kind "prop") or items ("items")."""
    out = []
    if not isinstance(schema, dict):
        return out
    if kind == "prop" and key in schema.get("properties", {}):
        out.append(schema["properties"][key])
    if kind == "items" and isinstance(schema.get("items"), dict):
        out.append(schema["items"])
    for k in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(k, []):
            out += sub_schemas(sub, key, kind)
    return out


def undocumented(schema, data, where="body"):
    """Fields in data that the schema does not document (OpenAPI allows them; the
    spec of a Red5-compatible API should not have them)."""
    problems = []
    if isinstance(data, dict):
        names, open_ = documented_fields(schema)
        if names and not open_:
            extra = sorted(set(data) - names)
            if extra:
                problems.append("%s: undocumented fields %s" % (where, extra))
        for k, v in data.items():
            for sub in sub_schemas(schema, k, "prop"):
                problems += undocumented(sub, v, "%s.%s" % (where, k))
    elif isinstance(data, list):
        for sub in sub_schemas(schema, None, "items"):
            for i, v in enumerate(data[:5]):
                problems += undocumented(sub, v, "%s[%d]" % (where, i))
    return problems


def operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method], item.get("parameters", [])


# ----------------------------------------------------------------------------
# checking one response
# ----------------------------------------------------------------------------

def media_type(ctype):
    return ctype.split(";")[0].strip().lower()


def check_response(spec, method, path, op, resp, what):
    """Problems (strings) of one response against the operation's spec."""
    label = "%s %s (%s)" % (method.upper(), path, what)
    responses = op.get("responses", {})
    code = str(resp.status)
    if code not in responses:
        return ["%s: status %s not in the spec's %s; body %r" % (label, code, sorted(responses),
                                                                 resp.body[:200])]
    rdef = deref(spec, responses[code])
    content = rdef.get("content")
    if not content:
        return []
    mt = media_type(resp.ctype)
    if mt not in content:
        return ["%s: content type %s not in the spec's %s" % (label, mt, sorted(content))]
    schema_node = content[mt].get("schema")
    if schema_node is None:
        return []
    schema = to_jsonschema(spec, schema_node)
    if mt != "application/json":
        if schema.get("type") == "string":
            return []
        return ["%s: cannot check a %s body against %s" % (label, mt, schema)]
    try:
        body = resp.json
    except ValueError as e:
        return ["%s: body is not JSON (%s): %r" % (label, e, resp.body[:200])]
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(body), key=lambda e: e.path)
    problems = ["%s: %s at %s" % (label, e.message, "/".join(str(p) for p in e.absolute_path))
                for e in errors[:5]]
    problems += ["%s: %s" % (label, p) for p in undocumented(schema, body)]
    return problems


# ----------------------------------------------------------------------------
# the live world
# ----------------------------------------------------------------------------

class HookSink(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that acknowledges everything."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def sink():
    srv = http.server.ThreadingHTTPServer((HOST, 0), HookSink)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://%s:%d/hook" % (HOST, srv.server_address[1])
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def world(module_sluice_factory, module_procs, media_src, sink):
    srv = start_api_server(module_sluice_factory, config={"webhooks": {"url": sink},
                                                          "abr": {"enabled": True}})
    api = Api(srv)
    start_publisher(module_procs, media_src, srv)
    start_player(module_procs, srv)
    (player,) = wait_subscribers(api, 1)

    def delivered():
        r = api.get("webhooks/deliveries", {"state": "delivered"})
        return r.status == 200 and r.data

    deliveries = wait_until(delivered, T(15), 0.1, "a delivered webhook")
    srv.api = api
    srv.values = {"app": "live", "stream": "stream1", "clientId": player["id"],
                  "soname": "BallControl", "key": "color", "id": deliveries[-1]["id"],
                  "nodeId": "node-1"}
    return srv


def fill(path, values):
    def sub(m):
        assert m.group(1) in values, "no value for path parameter {%s}" % m.group(1)
        return values[m.group(1)]

    return re.sub(r"\{([^}]+)\}", sub, path)


def params_of(spec, op, path_params):
    return [deref(spec, p) for p in list(path_params) + list(op.get("parameters", []))]


def call_variants(spec, method, path, op, path_params):
    """(label, query list, body) of each call to make for one operation: one with the
    required query parameters, one more per optional one (each enum value)."""
    params = params_of(spec, op, path_params)
    query = [p for p in params if p["in"] == "query"]
    required = [(p["name"], QUERY_SAMPLES.get(p["name"], "x")) for p in query if p.get("required")]
    body = None
    if "requestBody" in op:
        body = {"method": "sayHello", "parameters": ["Tony"]}
    variants = [("required params", required, body)]
    if method in ("get",) and path != "/api/v1/events":
        for p in query:
            if p.get("required"):
                continue
            enum = p.get("schema", {}).get("enum")
            for v in enum or [QUERY_SAMPLES.get(p["name"], "x")]:
                variants.append(("%s=%s" % (p["name"], v), required + [(p["name"], str(v))], body))
    if "requestBody" in op and path.endswith("/invoke"):
        variants.append(("bad body", required, b"not json"))
    return variants


def ws_upgrade_status(port, target):
    """Sends a WebSocket upgrade and returns the status code of the answer."""
    with socket.create_connection((HOST, port), timeout=T(5)) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   % target).encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
        assert m, "no status line in %r" % data[:200]
        return int(m.group(1))


# ----------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------

def test_spec_is_well_formed():
    spec = load_spec()
    assert spec["openapi"].startswith("3.0."), spec["openapi"]
    n = 0
    for method, path, op, path_params in operations(spec):
        n += 1
        assert op.get("summary"), (method, path)
        assert op.get("responses"), (method, path)
        declared = {p["name"] for p in params_of(spec, op, path_params) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), (method, path, declared)
        for code, r in op["responses"].items():
            r = deref(spec, r)
            assert r.get("description"), (method, path, code)
            for c in r.get("content", {}).values():
                if "schema" in c:
                    jsonschema.Draft7Validator.check_schema(to_jsonschema(spec, c["schema"]))
        if path.startswith("/api/v1/"):
            assert "401" in op["responses"], "%s %s lacks the 401 answer" % (method, path)
    assert n >= len(KNOWN_ROUTES)


def test_converter():
    spec = {"components": {"schemas": {"A": {"type": "string", "nullable": True,
                                             "enum": ["x"], "example": "x"}}}}
    s = to_jsonschema(spec, {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"},
                                                              "b": {"nullable": True}}})
    assert s["properties"]["a"] == {"type": ["string", "null"], "enum": ["x", None]}
    v = jsonschema.Draft7Validator(s)
    assert v.is_valid({"a": None}) and v.is_valid({"a": "x"}) and not v.is_valid({"a": "y"})
    assert undocumented(s, {"a": "x", "c": 1}) == ["body: undocumented fields ['c']"]


def test_spec_covers_every_route():
    spec = load_spec()
    in_spec = {(m, p) for m, p, _, _ in operations(spec)}
    missing = [r for r in KNOWN_ROUTES if r not in in_spec]
    assert not missing, "routes the server answers but the spec lacks: %s" % missing
    unknown = sorted(in_spec - set(KNOWN_ROUTES))
    assert not unknown, "spec operations not in KNOWN_ROUTES (add them, or remove them " \
                        "from the spec if the server has no such route): %s" % unknown


def test_known_routes_are_served(world):
    """KNOWN_ROUTES is honest: none of them gets the router's "no such endpoint" 404."""
    api = world.api
    for method, path in KNOWN_ROUTES:
        if (method, path) in DESTRUCTIVE_ORDER or path in ("/metrics", "/api/v1/events"):
            continue
        r = api.request(method.upper(), fill(path, world.values),
                        body={"method": "m"} if method == "post" else None)
        if r.status == 404:
            assert "no such" not in r.json["message"].lower(), (method, path, r)


def test_walk(world, module_procs, media_src):
    spec = load_spec()
    api = world.api
    port = http_port_of(world)
    problems = []
    ops = list(operations(spec))
    safe = [o for o in ops if (o[0], o[1]) not in DESTRUCTIVE_ORDER]
    walked = set()

    def run(method, path, op, path_params, values):
        walked.add((method, path))
        if path == "/api/v1/events":
            status = ws_upgrade_status(port, "/api/v1/events?accessToken=%s" % api.token)
            if str(status) not in op["responses"]:
                problems.append("GET %s: upgrade answered %d, not in the spec" % (path, status))
            r = api.get(fill(path, values))  # without upgrade headers: 400 envelope
            problems.extend(check_response(spec, method, path, op, r, "plain GET"))
            return
        for label, query, body in call_variants(spec, method, path, op, path_params):
            r = api.request(method.upper(), fill(path, values), query, body=body)
            problems.extend(check_response(spec, method, path, op, r, label))

    for method, path, op, pp in safe:
        run(method, path, op, pp, world.values)

    # The state-changing operations, on a second stream with players of its own.
    start_publisher(module_procs, media_src, world, stream="stream2")
    for i in range(3):
        start_player(module_procs, world, stream="stream2", name="victim%d" % i)
    victims = [s["id"] for s in wait_subscribers(api, 3, "stream2")]
    by_key = {(m, p): (m, p, op, pp) for m, p, op, pp in ops}
    for key, victim in zip(DESTRUCTIVE_ORDER, victims + [None] * 5):
        method, path, op, pp = by_key[key]
        values = dict(world.values, stream="stream2", clientId=victim or world.values["clientId"])
        run(method, path, op, pp, values)
        if victim:
            wait_until(lambda: victim not in {s["id"] for s in api.data(
                "applications/live/streams/stream2/subscribers")} if "stream2" in api.data(
                "applications/live/streams") else True, T(5), 0.1, "%s gone" % victim)
    # the last one (DELETE /clients) disconnected everyone in live
    wait_until(lambda: api.data("applications/live/clients") == [], T(10), 0.1, "no clients")

    assert walked == {(m, p) for m, p, _, _ in ops}, "not walked: %s" % (
        {(m, p) for m, p, _, _ in ops} - walked)
    assert not problems, "\n".join(problems)


def test_walk_unauthorized(world):
    """Without a token every /api/v1 operation answers the documented 401."""
    spec = load_spec()
    api = world.api
    problems = []
    for method, path, op, _ in operations(spec):
        if not path.startswith("/api/v1/"):
            continue
        r = api.request(method.upper(), fill(path, world.values), token=None)
        if r.status != 401:
            problems.append("%s %s without a token: %r" % (method.upper(), path, r))
            continue
        problems.extend(check_response(spec, method, path, op, r, "no token"))
    assert not problems, "\n".join(problems)


LINT_DIR = REPO / "tests" / "openapi"
REDOCLY = LINT_DIR / "node_modules" / "@redocly" / "cli" / "bin" / "cli.js"


def redocly_lint(spec):
    """Runs Redocly CLI (pinned by tests/openapi/package-lock.json) with its config:
    every rule of recommended-strict an error except the ones it turns off."""
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true")
    return subprocess.run(["node", str(REDOCLY), "lint", str(spec), "--config",
                           str(LINT_DIR / "redocly.yaml"), "--format", "stylish"],
                          capture_output=True, text=True, timeout=T(120), cwd=str(LINT_DIR),
                          env=env)


@pytest.fixture(scope="module")
def redocly():
    if shutil.which("node") is None or not REDOCLY.exists():
        pytest.skip("Redocly CLI not installed (cd tests/openapi && npm ci; make test does)")


def test_spec_passes_the_linter(redocly):
    """docs/openapi.yaml lints clean: an operationId on every operation, 2xx and 4xx
    answers, no unused components, ... (generated clients get good method names)."""
    p = redocly_lint(SPEC_PATH)
    assert p.returncode == 0, "redocly lint docs/openapi.yaml:\n%s%s" % (p.stdout, p.stderr)


def test_linter_fails_on_a_missing_operation_id(redocly, tmp_path):
    """The linter is not decorative: one operationId taken out fails it."""
    text = SPEC_PATH.read_text()
    assert "      operationId: getServer\n" in text
    spec = tmp_path / "openapi.yaml"
    spec.write_text(text.replace("      operationId: getServer\n", "", 1))
    p = redocly_lint(spec)
    assert p.returncode != 0 and "operation-operationId" in p.stdout + p.stderr, p.stdout
