"""Packaging (issue 17): make install, the Debian package, container and cluster files.

  - `make install DESTDIR=<tmp> PREFIX=/usr` (its own build tree, build-install/, built
    once and reused): the installed binary, started from a scratch directory with the
    installed /etc/sluice/sluice.yml and no web_root set, serves the console (GET /), the
    SDK (/lib/sluice/index.js) and the API; its --help names the compiled-in web root;
  - every installed man page renders with `man -l` and groff reports no warning;
  - pkg-config finds sluice-client and sluice-plugin in the DESTDIR
    (PKG_CONFIG_SYSROOT_DIR + PKG_CONFIG_PATH); a tiny C program compiles and links
    against the installed libsluice-client.so and runs; a plugin compiles against the
    installed headers;
  - the Grafana dashboard: every query is in the PromQL subset scripts/grafana-preview.py
    draws, names a metric the installed sluice exports, and evaluates on two scrapes;
  - the Dockerfile, documented check (hadolint is not in Debian, and npm's `hadolint`
    is only a wrapper that needs the binary from elsewhere; hadolint runs when it is
    on PATH): two or more stages, a debian:12 build stage, a slim runtime stage that
    copies from it, a non-root USER after the last FROM, a HEALTHCHECK on /healthz,
    exec-form ENTRYPOINT, and a runtime `apt-get install` that names the package of every
    library the installed binaries link directly (readelf NEEDED -> ldd -> dpkg -S); docker-compose.yml (sluice + Redis with a health check); the
    Kubernetes manifests (Deployment, Service, ConfigMap, PVC; ports are sluice's
    defaults, probes on /healthz, non-root, read-only root);
  - the systemd unit's hardening keys (and `systemd-analyze verify` knows every key);
  - marker `deb` (opt-in: `make test-deb`, which `make test` runs once; a full build): scripts/build-deb.sh builds
    the packages, `dpkg -x` unpacks them into a scratch root, the conffile and the unit
    are there, and `sluice --config <root>/etc/sluice/sluice.yml` serves a stream that
    ffmpeg publishes and the packaged sluice-play records (ffprobe reads it).

Skipped on a sanitizer build: packaging is not about memory, and the normal pass runs it.
"""

import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import time
import urllib.request

import pytest
import yaml

from conftest import (HOST, REPO, Sluice, T, ffmpeg_publish_cmd, ffprobe_streams, free_port,
                      is_sanitizer_build, wait_until)

pytestmark = pytest.mark.skipif(is_sanitizer_build(), reason="packaging runs in the normal pass")

MAN_PAGES = ["sluice", "sluice-publish", "sluice-play", "sluice-bench", "sluice-so"]
TOKEN = "packaging-api-token-0123456789"


def run(cmd, timeout=600, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert p.returncode == 0, "%s -> %d\n%s\n%s" % (cmd, p.returncode, p.stdout[-3000:],
                                                   p.stderr[-3000:])
    return p


class Installed(Sluice):
    """A sluice run from an installed tree: its binary, its /etc config, a scratch cwd."""

    def __init__(self, workdir, root, **kw):
        self.root = pathlib.Path(root)
        super().__init__(workdir, use_config=False,
                         args=["--config", str(self.root / "etc/sluice/sluice.yml")], **kw)

    def cmdline(self):
        return [str(self.root / "usr/bin/sluice")] + self.args

    def start(self, timeout=None):
        # Sluice.start, without its check of SLUICE_BIN (make test-deb needs no build/).
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmdline(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env, cwd=str(self.workdir))
        self.wait_ready(T(10) if timeout is None else timeout)
        return self


def port_keys(binary):
    """["SLUICE_HTTP_PORT", ...]: every `port` / `<name>_port` key of the sections the
    installed binary's own --print-config yaml shows (as conftest's listener_port_keys
    does for SLUICE_BIN, which `make test-deb` need not have built)."""
    out, section = [], None
    for line in run([str(binary), "--print-config", "yaml"]).stdout.splitlines():
        m = re.match(r"^([a-z_]+):\s*(#.*)?$", line)
        if m:
            section = m.group(1)
            continue
        k = re.match(r"^  ((?:[a-z]+_)?port):", line)
        if k and section:
            out.append("SLUICE_%s_%s" % (section.upper(), k.group(1).upper()))
    return out


def start_installed(workdir, root):
    port = free_port()
    env = {"SLUICE_RTMP_PORT": str(port), "SLUICE_API_ACCESS_TOKEN": TOKEN}
    for name in port_keys(pathlib.Path(root) / "usr/bin/sluice"):
        env.setdefault(name, str(free_port()))
    assert "SLUICE_HTTP_PORT" in env, env
    srv = Installed(workdir, root, port=port, env=env)
    srv.http = int(srv.env["SLUICE_HTTP_PORT"])
    srv.start()  # returns once RTMP listens: HTTP opens after it, and its routes later still
    srv.wait_log(r"http: web pages from ", T(10))  # logged once the API and pages are routed
    return srv


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """make install DESTDIR=<tmp> PREFIX=/usr, from build-install/ (kept between runs)."""
    dest = tmp_path_factory.mktemp("destdir")
    run(["make", "-C", str(REPO), "--no-print-directory", "install", "PREFIX=/usr",
         "DESTDIR=%s" % dest, "JOBS=%s" % os.environ.get("JOBS", "2")], timeout=1800)
    return dest


@pytest.fixture(scope="module")
def installed(root, tmp_path_factory):
    srv = start_installed(tmp_path_factory.mktemp("elsewhere"), root)
    yield srv
    srv.check_clean_exit()


def test_install_tree(root):
    for f in ["usr/bin/sluice", "usr/bin/sluice-publish", "usr/bin/sluice-play",
              "usr/bin/sluice-bench", "usr/bin/sluice-so", "usr/lib/libsluice-client.so.1",
              "usr/include/sluice/client.h", "usr/include/sluice/plugin.h",
              "usr/lib/pkgconfig/sluice-client.pc", "usr/lib/pkgconfig/sluice-plugin.pc",
              "usr/share/sluice/web/index.html", "usr/share/sluice/web/lib/sluice/index.js",
              "etc/sluice/sluice.yml"] + ["usr/share/man/man1/%s.1" % m for m in MAN_PAGES]:
        assert (root / f).exists(), f
    conf = (root / "etc/sluice/sluice.yml").read_text()
    assert re.search(r"(?m)^  web_root: auto$", conf), "web_root is not left to auto"
    out = run([str(root / "usr/bin/sluice"), "--help"]).stdout
    assert "/usr/share/sluice/web" in out, out  # PREFIX=/usr compiled in
    run([str(root / "usr/bin/sluice"), "--check-config", "--config",
         str(root / "etc/sluice/sluice.yml")])


def test_installed_binary_serves_console_sdk_and_api(installed):
    base = "http://%s:%d" % (HOST, installed.http)
    status, ctype, body = get(base + "/")
    assert status == 200 and ctype.startswith("text/html"), (status, ctype)
    assert b"<title>sluice console</title>" in body
    status, ctype, body = get(base + "/lib/sluice/index.js")
    assert status == 200 and b"export" in body
    status, _, body = get(base + "/api/v1/server?accessToken=" + TOKEN)
    assert status == 200 and json.loads(body)["status"] == "success", body
    # Found beside the binary (<bin>/../share/sluice/web), not in the source tree.
    installed.wait_log(r"web pages from .*%s" % re.escape(str(installed.root / "usr/bin")), T(5))


@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_page_renders(root, page):
    path = root / ("usr/share/man/man1/%s.1" % page)
    out = run(["man", "-l", str(path)], env=dict(os.environ, MANPAGER="cat", PAGER="cat",
                                                 MANWIDTH="100")).stdout
    assert "NAME" in out and "SYNOPSIS" in out and page in out, out[:500]
    warnings = run(["groff", "-ww", "-z", "-man", str(path)]).stderr
    assert warnings == "", warnings


CLIENT_PROGRAM = r"""
#include <stdio.h>
#include <uv.h>
#include "sluice/client.h"
int main(void)
{
    uv_loop_t loop;
    sl_client_opts_t o;
    sl_client_t *c = NULL;
    uv_loop_init(&loop);
    sl_client_opts_init(&o);
    if (sl_client_new(&loop, "ftp://nowhere", &o, &c) != SL_EINVAL || c)
        return 1;
    if (sl_client_new(&loop, "rtmp://127.0.0.1:1/live/s", &o, &c) != 0 || !c)
        return 2;
    sl_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    printf("ok %s\n", sl_strerror(SL_EINVAL));
    return uv_loop_close(&loop) == 0 ? 0 : 3;
}
"""

PLUGIN = r"""
#include "sluice/plugin.h"
#include "sluice/version.h"
int sl_packaging_probe(void) { return SL_ABI_MAJOR; }
"""


def pkg_config(root, *args):
    env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=str(root),
               PKG_CONFIG_PATH=str(root / "usr/lib/pkgconfig"))
    return run(["pkg-config"] + list(args), env=env).stdout.split()


def test_pkg_config_and_client_program(root, tmp_path):
    flags = pkg_config(root, "--cflags", "--libs", "sluice-client")
    assert "-I%s/usr/include" % root in flags and "-lsluice-client" in flags, flags
    assert "-luv" in flags, flags  # Requires: libuv
    (tmp_path / "prog.c").write_text(CLIENT_PROGRAM)
    run(["cc", "-Wall", "-Werror", "-o", str(tmp_path / "prog"), str(tmp_path / "prog.c")] + flags)
    out = run([str(tmp_path / "prog")],
              env=dict(os.environ, LD_LIBRARY_PATH=str(root / "usr/lib"))).stdout
    assert out.startswith("ok "), out
    ldd = run(["ldd", str(tmp_path / "prog")],
              env=dict(os.environ, LD_LIBRARY_PATH=str(root / "usr/lib"))).stdout
    assert "libsluice-client.so.1 => %s" % (root / "usr/lib") in ldd, ldd

    pflags = pkg_config(root, "--cflags", "sluice-plugin")
    assert pflags == ["-I%s/usr/include" % root], pflags
    version = pkg_config(root, "--modversion", "sluice-plugin")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version[0]), version
    (tmp_path / "plugin.c").write_text(PLUGIN)
    run(["cc", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-Werror", "-o",
         str(tmp_path / "plugin.so"), str(tmp_path / "plugin.c")] + pflags)


def load_preview():
    spec = importlib.util.spec_from_file_location("grafana_preview",
                                                  REPO / "scripts" / "grafana-preview.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_grafana_dashboard_queries_live_metrics(installed):
    gp = load_preview()
    dash = json.loads((REPO / "deploy/grafana/sluice.json").read_text())
    url = "http://%s:%d/metrics" % (HOST, installed.http)
    scrapes = []
    for _ in range(2):  # two scrapes: rate() needs an interval
        t = time.time()
        scrapes.append((t, gp.parse_metrics(get(url)[2].decode())))
        wait_until(lambda: time.time() > t + 0.2, 5, 0.05, "a later scrape")
    exported = {name for name, _ in scrapes[-1][1]}
    ids = set()
    for p in dash["panels"]:
        assert p["id"] not in ids
        ids.add(p["id"])
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        assert p["targets"], p["title"]
        for target in p["targets"]:
            q = gp.parse_query(target["expr"])
            assert q["metric"] in exported, "%s: %s is not in /metrics" % (p["title"], q["metric"])
            if q["rate"]:
                assert q["metric"].endswith("_total"), q["metric"]
        series = gp.panel_series(p, scrapes)
        assert series, "%s: no series" % p["title"]
        assert any(v is not None for _, pts in series for _, v in pts), p["title"]
    # The renderer refuses what it cannot evaluate.
    with pytest.raises(ValueError):
        gp.parse_query('histogram_quantile(0.9, sum(rate(x_bucket[1m])) by (le))')
    # A counter's rate over two known scrapes.
    s = [(0.0, {("c_total", ()): 10.0}), (2.0, {("c_total", ()): 30.0})]
    assert gp.evaluate(gp.parse_query("sum(rate(c_total[1m])) * 8"), s, 1) == {(): 80.0}
    assert (REPO / "docs/img/grafana-preview.png").stat().st_size > 10000


def dockerfile_instructions(text):
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_compose_and_kubernetes(root):
    text = (REPO / "Dockerfile").read_text()
    if shutil.which("hadolint"):
        run(["hadolint", str(REPO / "Dockerfile")])
    ins = dockerfile_instructions(text)
    froms = [(i, rest) for i, (w, rest) in enumerate(ins) if w == "FROM"]
    assert len(froms) >= 2, "not multi-stage"
    assert re.fullmatch(r"debian:12 AS build", froms[0][1]), froms[0]
    assert froms[-1][1].startswith("debian:12-slim"), froms[-1]
    last = ins[froms[-1][0]:]
    assert any(w == "COPY" and "--from=build" in r for w, r in last)
    users = [r for w, r in last if w == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    health = [r for w, r in last if w == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0] and "CMD" in health[0], health
    entry = [r for w, r in last if w == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["/usr/bin/sluice"], entry
    for w, r in ins:
        assert w != "ADD", "use COPY"
        if w == "RUN" and "apt-get install" in r:
            assert "--no-install-recommends" in r and "rm -rf /var/lib/apt/lists" in r, r
    assert ":latest" not in " ".join(r for w, r in ins if w == "FROM")
    # The runtime stage installs the package of every library the binary and the tools
    # link directly (DT_NEEDED, found where ldd resolves it; dpkg -S names the package;
    # apt brings what those need in turn).
    runtime_apt = " ".join(r for w, r in last if w == "RUN" and "apt-get install" in r).split()
    libs = set()
    for exe in ["sluice", "sluice-publish", "sluice-play", "sluice-bench", "sluice-so"]:
        path = str(root / "usr/bin" / exe)
        needed_names = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                                  run(["readelf", "-d", path]).stdout)
        where = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", path]).stdout, re.M))
        for name in needed_names:
            assert name in where, "%s: %s not found by ldd" % (exe, name)
            libs.add(os.path.realpath(where[name]))
    # One dpkg -S for all, each path in both spellings (/lib and /usr/lib: merged /usr).
    spellings = {lib: {lib, lib[4:] if lib.startswith("/usr/") else "/usr" + lib} for lib in libs}
    p = subprocess.run(["dpkg", "-S"] + sorted(set().union(*spellings.values())),
                       capture_output=True, text=True)
    owner = {path: pkg.split(":")[0] for pkg, path in
             re.findall(r"^(\S+): (\S+)$", p.stdout, re.M)}
    needed = set()
    for lib, names in spellings.items():
        pkgs = [owner[n] for n in names if n in owner]
        assert pkgs, "no package owns %s" % lib
        needed.add(pkgs[0])
    needed -= {"libc6", "libgcc-s1", "libstdc++6"}  # in every Debian image
    missing = sorted(n for n in needed if n not in runtime_apt)
    assert not missing, "runtime stage lacks %s" % missing
    uid = re.search(r"useradd [^&]*--uid (\d+)", text)

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert set(compose["services"]) >= {"sluice", "redis"}
    assert "healthcheck" in compose["services"]["redis"]
    assert "/var/lib/sluice" in " ".join(compose["services"]["sluice"]["volumes"])

    defaults = yaml.safe_load(run([str(root / "usr/bin/sluice"), "--print-config", "yaml"]).stdout)
    docs = {}
    kdir = REPO / "deploy/kubernetes"
    kust = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    for f in kust["resources"]:
        for d in yaml.safe_load_all((kdir / f).read_text()):
            docs[d["kind"]] = d
    assert set(docs) == {"Deployment", "Service", "ConfigMap", "PersistentVolumeClaim"}
    spec = docs["Deployment"]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["rtmp"] == defaults["rtmp"]["port"] and ports["http"] == defaults["http"]["port"]
    assert ports["webrtc"] == defaults["webrtc"]["port"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/healthz"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert uid and spec["securityContext"]["runAsUser"] == int(uid.group(1))  # the image's user
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/var/lib/sluice"}
    assert docs["Deployment"]["spec"]["strategy"]["type"] == "Recreate"
    svc_ports = {p["name"]: p["targetPort"] for p in docs["Service"]["spec"]["ports"]}
    assert set(svc_ports.values()) <= set(ports)
    # Every SLUICE_ variable names a real key (sluice refuses unknown ones).
    for k in docs["ConfigMap"]["data"]:
        section, _, key = k[len("SLUICE_"):].lower().partition("_")
        assert key in defaults.get(section, {}), k


def test_systemd_unit_hardening(root, tmp_path):
    unit = (REPO / "debian/sluice.service").read_text()
    if shutil.which("systemd-analyze"):
        # Every key known to this systemd: verify a copy whose commands are the DESTDIR's
        # binary (verify wants them to exist) and without the man: link (verify runs man).
        copy = tmp_path / "sluice.service"
        copy.write_text(re.sub(r"(?m)^Documentation=.*\n", "", unit.replace(
            "/usr/bin/sluice", str(root / "usr/bin/sluice"))))
        p = run(["systemd-analyze", "verify", str(copy)])
        assert p.stderr.strip() == "", p.stderr
    keys = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            keys.setdefault(k.strip(), []).append(v.strip())
    want = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
            "CapabilityBoundingSet": "", "ReadWritePaths": "/var/lib/sluice",
            "StateDirectory": "sluice", "User": "sluice", "ProtectHome": "yes",
            "PrivateDevices": "yes", "WorkingDirectory": "/var/lib/sluice"}
    for k, v in want.items():
        assert keys.get(k) == [v], (k, keys.get(k))
    assert keys["ExecStart"] == ["/usr/bin/sluice --config /etc/sluice/sluice.yml"]
    assert "StandardOutput" not in keys  # stdout goes to the journal (the default)
    sysusers = (REPO / "debian/sluice.sysusers").read_text()
    assert re.search(r"(?m)^u sluice - .* /var/lib/sluice$", sysusers)


@pytest.mark.deb
def test_deb_builds_installs_and_serves_a_stream(tmp_path, media_src, procs):
    out = tmp_path / "deb"
    debs = run(["bash", str(REPO / "scripts/build-deb.sh"), str(out)], timeout=1800,
               env=dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2 noautodbgsym")
               ).stdout.split()
    names = sorted(pathlib.Path(d).name.split("_")[0] for d in debs)
    assert names == ["libsluice-client1", "sluice", "sluice-dev"], names
    root = tmp_path / "root"
    for d in debs:
        run(["dpkg-deb", "-x", d, str(root)])
    main = [d for d in debs if pathlib.Path(d).name.startswith("sluice_")][0]
    ctl = tmp_path / "control"
    run(["dpkg-deb", "-e", main, str(ctl)])
    assert (ctl / "conffiles").read_text().split() == ["/etc/sluice/sluice.yml"]
    assert "systemd-sysusers" in (ctl / "postinst").read_text()
    assert (root / "lib/systemd/system/sluice.service").exists()
    conf = (root / "etc/sluice/sluice.yml").read_text()
    assert re.search(r"(?m)^  data_dir: /var/lib/sluice$", conf)
    assert (root / "usr/share/man/man1/sluice.1.gz").exists()

    srv = start_installed(tmp_path / "run", root)  # data_dir: SLUICE_SERVER_DATA_DIR
    try:
        url = "rtmp://%s:%d/live/deb" % (HOST, srv.port)
        procs.start(ffmpeg_publish_cmd(media_src, url), "ffmpeg-publish")
        flv = tmp_path / "played.flv"

        def played():
            p = subprocess.run([str(root / "usr/bin/sluice-play"), "-q", "-t", "3", "-timeout",
                                "3000", "-o", str(flv), url], capture_output=True, timeout=T(30))
            return p.returncode == 0
        wait_until(played, T(30), 0.5, "sluice-play to record 3 s of the published stream")
        kinds = sorted(s["codec_type"] for s in ffprobe_streams(str(flv)))
        assert kinds == ["audio", "video"], kinds
        status, _, body = get("http://%s:%d/" % (HOST, srv.http))
        assert status == 200 and b"sluice console" in body
    finally:
        srv.check_clean_exit()
