#!/usr/bin/env python3
"""A faithful preview of deploy/grafana/sluice.json, drawn from a live sluice.

Grafana is not in Debian, so docs/img/grafana-preview.png is not a Grafana
screenshot: this script starts a real sluice (the given binary, free ports, a
scratch data folder), puts load on it for --duration seconds (an ffmpeg
publisher, RTMP players that come and go, an HTTP-FLV player), scrapes its
/metrics every --step seconds, evaluates each panel's own PromQL query on
those scrapes, and draws the panels at their gridPos (24 columns, 30 px rows)
as SVG in an HTML page that headless Chromium turns into a PNG. Same queries,
same layout, same units; only the look is an approximation of Grafana's.

Only the PromQL the dashboard uses is understood, and anything else is refused
(so a dashboard edit cannot silently draw something else):
    [sum|max|min|avg] [by (l, ...)] ( X )  [* number]
    X = rate(SELECTOR[Nm|Ns]) | SELECTOR
    SELECTOR = metric_name{...}   (label matchers other than instance are refused)

    scripts/grafana-preview.py --sluice build/sluice [--duration 60] [--step 2]
        [--out docs/img/grafana-preview.png] [--save-samples F] [--samples F]

tests/e2e/test_packaging.py checks that every query parses here and names a
metric a live sluice exports.
"""

import argparse
import html
import json
import math
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "deploy" / "grafana" / "sluice.json"

# ---------------------------------------------------------------------------
# /metrics and the PromQL subset
# ---------------------------------------------------------------------------

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format -> {(name, ((label, value), ...)): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            continue
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


QUERY = re.compile(
    r'^\s*(?:(?P<agg>sum|max|min|avg)\s*(?:by\s*\((?P<by>[^)]*)\))?\s*\()?\s*'
    r'(?:(?P<fn>rate)\(\s*)?(?P<metric>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(?P<matchers>[^}]*)\})?'
    r'\s*(?:\[(?P<win>\d+)(?P<unit>[sm])\])?\s*(?(fn)\))\s*(?(agg)\))\s*'
    r'(?:\*\s*(?P<mul>[0-9.]+))?\s*$')


def parse_query(expr):
    """Parses one dashboard query; raises ValueError for what the subset lacks."""
    m = QUERY.match(expr)
    if not m:
        raise ValueError("query outside the preview's PromQL subset: %r" % expr)
    matchers = [x.strip() for x in (m.group("matchers") or "").split(",") if x.strip()]
    for x in matchers:
        if not x.startswith("instance"):
            raise ValueError("label matcher %r not supported in %r" % (x, expr))
    if bool(m.group("fn")) != bool(m.group("win")):
        raise ValueError("rate() needs a range and a range needs rate(): %r" % expr)
    win = int(m.group("win") or 0) * (60 if m.group("unit") == "m" else 1)
    return {"agg": m.group("agg"), "by": [b.strip() for b in (m.group("by") or "").split(",")
                                          if b.strip()],
            "rate": bool(m.group("fn")), "metric": m.group("metric"), "window": win,
            "mul": float(m.group("mul") or 1)}


def evaluate(q, scrapes, i):
    """The value of query q at scrape i: {label-tuple: value} (after aggregation).
    rate() is Prometheus's: increase over the window's samples / their time span
    (at least two samples; a counter reset counts from zero)."""
    t_i, now = scrapes[i]
    series = {}
    for (name, labels), v in now.items():
        if name != q["metric"]:
            continue
        if q["rate"]:
            pts = [(t, s.get((name, labels))) for t, s in scrapes[:i + 1] if t >= t_i - q["window"]]
            pts = [(t, x) for t, x in pts if x is not None]
            if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
                continue
            inc = 0.0
            for (_, a), (_, b) in zip(pts, pts[1:]):
                inc += b - a if b >= a else b
            v = inc / (pts[-1][0] - pts[0][0])
        series[labels] = v
    if q["agg"]:
        groups = {}
        for labels, v in series.items():
            key = tuple((k, x) for k, x in labels if k in q["by"])
            groups.setdefault(key, []).append(v)
        fn = {"sum": sum, "max": max, "min": min, "avg": lambda xs: sum(xs) / len(xs)}[q["agg"]]
        series = {k: fn(vs) for k, vs in groups.items() if vs}
    return {k: v * q["mul"] for k, v in series.items()}


def legend(fmt, labels, fallback):
    d = dict(labels)
    out = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: d.get(m.group(1), ""), fmt or "")
    return out or fallback


def panel_series(panel, scrapes):
    """[(legend, [(t, value or None)])] of a panel over every scrape."""
    out = []
    for target in panel.get("targets", []):
        q = parse_query(target["expr"])
        values = [evaluate(q, scrapes, i) for i in range(len(scrapes))]
        keys = sorted({k for v in values for k in v})
        for k in keys:
            out.append((legend(target.get("legendFormat"), k, q["metric"]),
                        [(scrapes[i][0], values[i].get(k)) for i in range(len(scrapes))]))
    return out

# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------

COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9",
          "#fade2a", "#96d98d"]
COL_W, ROW_H, GAP = 62, 30, 6


def fmt_value(v, unit):
    if v is None:
        return "-"
    if unit == "s":
        if v >= 3600:
            return "%.1f h" % (v / 3600)
        if v >= 60:
            return "%.1f min" % (v / 60)
        if v >= 1:
            return "%.1f s" % v
        return "%.2f ms" % (v * 1000) if v >= 1e-4 else "%.0f µs" % (v * 1e6)
    if unit == "percentunit":
        return "%.1f%%" % (v * 100)
    scales = {"bytes": (1024, ["B", "KiB", "MiB", "GiB"]), "bps": (1000, ["b/s", "kb/s", "Mb/s", "Gb/s"]),
              "pps": (1000, ["p/s", "kp/s", "Mp/s"]), "ops": (1000, ["/s", "k/s", "M/s"])}
    if unit in scales:
        base, names = scales[unit]
        k = 0
        while abs(v) >= base and k < len(names) - 1:
            v /= base
            k += 1
        return ("%.0f %s" if v >= 100 or k == 0 and v == int(v) else "%.2f %s") % (v, names[k])
    return "%d" % v if v == int(v) else "%.2f" % v


def svg_timeseries(panel, series, t0, t1, w, h):
    unit = panel["fieldConfig"]["defaults"].get("unit", "short")
    stacked = panel["fieldConfig"]["defaults"].get("custom", {}).get("stacking", {}).get("mode") == "normal"
    left, right, top, bottom = 70, 10, 8, 44
    pw, ph = w - left - right, h - top - bottom
    if stacked:  # cumulative sums, as Grafana stacks them
        acc, stacked_series = {}, []
        for name, pts in series:
            new = []
            for t, v in pts:
                if v is not None:
                    acc[t] = acc.get(t, 0) + v
                new.append((t, acc.get(t) if v is not None else None))
            stacked_series.append((name, new))
        series = stacked_series
    vals = [v for _, pts in series for _, v in pts if v is not None]
    vmax = max(vals) if vals else 1
    vmax = vmax * 1.1 if vmax > 0 else 1
    out = ['<svg width="%d" height="%d">' % (w, h)]
    for k in range(5):
        y = top + ph - ph * k / 4
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#2c3235"/>' % (left, left + pw, y, y))
        out.append('<text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>'
                   % (left - 6, y + 4, html.escape(fmt_value(vmax * k / 4, unit))))
    span = max(t1 - t0, 1)
    for k in range(5):
        x = left + pw * k / 4
        out.append('<text x="%.1f" y="%d" class="axis" text-anchor="%s">%s</text>'
                   % (x, top + ph + 16, "end" if k == 4 else "middle", time.strftime("%H:%M:%S", time.gmtime(t0 + span * k / 4))))
    for n, (name, pts) in enumerate(series):
        c = COLORS[n % len(COLORS)]
        xy = [(left + pw * (t - t0) / span, top + ph - ph * v / vmax) for t, v in pts if v is not None]
        if len(xy) >= 2:
            line = " ".join("%.1f,%.1f" % p for p in xy)
            area = "%.1f,%.1f %s %.1f,%.1f" % (xy[0][0], top + ph, line, xy[-1][0], top + ph)
            out.append('<polygon points="%s" fill="%s" fill-opacity="0.10"/>' % (area, c))
            out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>' % (line, c))
    x = left
    for n, (name, _) in enumerate(series):
        c = COLORS[n % len(COLORS)]
        out.append('<rect x="%d" y="%d" width="14" height="4" fill="%s"/>' % (x, h - 14, c))
        out.append('<text x="%d" y="%d" class="legend">%s</text>' % (x + 18, h - 9, html.escape(name)))
        x += 30 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


def svg_stat(panel, series, w, h):
    unit = panel["fieldConfig"]["defaults"].get("unit", "short")
    last = None
    pts = series[0][1] if series else []
    for _, v in pts:
        if v is not None:
            last = v
    out = ['<svg width="%d" height="%d">' % (w, h)]
    vals = [v for _, v in pts if v is not None]
    if len(vals) >= 2:
        vmax = max(vals) or 1
        xy = " ".join("%.1f,%.1f" % (w * k / (len(vals) - 1), h - 4 - (h * 0.45) * v / vmax)
                      for k, v in enumerate(vals))
        out.append('<polyline points="%s" fill="none" stroke="#73bf69" stroke-opacity="0.5" '
                   'stroke-width="2"/>' % xy)
    out.append('<text x="%d" y="%d" class="stat" text-anchor="middle">%s</text>'
               % (w / 2, h / 2 + 8, html.escape(fmt_value(last, unit))))
    out.append("</svg>")
    return "".join(out)


def render_html(dash, scrapes, note):
    t0, t1 = scrapes[0][0], scrapes[-1][0]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dash["panels"])
    parts = []
    for p in dash["panels"]:
        g = p["gridPos"]
        x, y = g["x"] * COL_W, g["y"] * ROW_H
        w, h = g["w"] * COL_W - GAP, g["h"] * ROW_H - GAP
        series = panel_series(p, scrapes)
        body = (svg_stat(p, series, w - 16, h - 36) if p["type"] == "stat"
                else svg_timeseries(p, series, t0, t1, w - 16, h - 36))
        parts.append('<div class="panel" style="left:%dpx;top:%dpx;width:%dpx;height:%dpx">'
                     '<div class="title">%s</div>%s</div>'
                     % (x, y, w, h, html.escape(p["title"]), body))
    return """<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;background:#111217;color:#ccccdc;font:13px Inter,Helvetica,Arial,sans-serif}
.bar{height:40px;padding:0 12px;display:flex;align-items:center;gap:16px;border-bottom:1px solid #2c3235}
.bar b{font-size:16px;color:#fff}.bar span{color:#8e8e9e;font-size:12px}
.grid{position:relative;margin:10px;height:%dpx}
.panel{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:6px 8px;box-sizing:border-box}
.title{font-weight:500;color:#ccccdc;height:24px}
.axis{fill:#8e8e9e;font-size:11px}.legend{fill:#ccccdc;font-size:11px}
.stat{fill:#73bf69;font-size:30px;font-weight:500}
</style></head><body><div class="bar"><b>%s</b><span>%s</span></div>
<div class="grid">%s</div></body></html>""" % (rows * ROW_H, html.escape(dash["title"]),
                                                html.escape(note), "".join(parts))


def screenshot(html_path, png_path, width, height):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("grafana-preview: chromium not found (scripts/deps.sh test installs it)")
    with tempfile.TemporaryDirectory() as prof:
        subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", "--user-data-dir=" + prof,
                        "--window-size=%d,%d" % (width, height),
                        "--screenshot=" + str(png_path), "file://" + str(html_path)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

# ---------------------------------------------------------------------------
# A live sluice under load
# ---------------------------------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, deadline):
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)  # poll until the deadline
    raise SystemExit("grafana-preview: sluice did not listen on %d" % port)


def collect(sluice_bin, duration, step):
    """Starts sluice and the load; returns [(t, parsed /metrics)] every step seconds."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-grafana-"))
    ports = {k: free_port() for k in ("RTMP_PORT", "RTMP_TLS_PORT", "HTTP_PORT", "HTTP_TLS_PORT",
                                       "WEBRTC_PORT")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({"SLUICE_" + k: str(v) for k, v in ports.items()})
    env["SLUICE_SERVER_DATA_DIR"] = str(work / "data")
    env["SLUICE_LOG_LEVEL"] = "warn"
    log = open(work / "sluice.log", "wb")
    procs = [subprocess.Popen([sluice_bin], cwd=work, env=env, stdout=log, stderr=log)]
    rtmp = "rtmp://127.0.0.1:%d/live/preview" % ports["RTMP_PORT"]
    http = "http://127.0.0.1:%d" % ports["HTTP_PORT"]
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    # (start second, stop second or None, command): players join and leave, so the
    # panels show change; the publisher is x264 at ~1.5 Mb/s, 25 fps.
    plan = [(0, None, ["ffmpeg", "-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
                       "-f", "lavfi", "-i", "sine=frequency=440", "-c:v", "libx264", "-preset",
                       "veryfast", "-b:v", "1500k", "-g", "50", "-c:a", "aac", "-f", "flv", rtmp])]
    for k, start in enumerate((0.15, 0.3, 0.45, 0.6)):
        stop = 0.85 if k % 2 else None
        plan.append((start * duration, stop and stop * duration,
                     ["ffmpeg", "-i", rtmp, "-c", "copy", "-f", "null", "-"]))
    plan.append((0.5 * duration, None, ["curl", "-sN", "-o", "/dev/null",
                                        http + "/live/preview.flv"]))
    running = {}
    scrapes = []
    try:
        wait_port(ports["HTTP_PORT"], time.monotonic() + 15)
        t_start = time.monotonic()
        while True:
            el = time.monotonic() - t_start
            for n, (start, stop, cmd) in enumerate(plan):
                if n not in running and el >= start and (stop is None or el < stop):
                    running[n] = subprocess.Popen(cmd, **quiet)
                elif n in running and stop is not None and el >= stop and running[n].poll() is None:
                    running[n].terminate()
            with urllib.request.urlopen(http + "/metrics", timeout=5) as r:
                scrapes.append((time.time(), parse_metrics(r.read().decode())))
            if el >= duration:
                break
            time.sleep(max(0.0, step - (time.monotonic() - t_start - el)))  # the scrape interval
    finally:
        for p in list(running.values()) + procs:
            if p.poll() is None:
                p.terminate()
        for p in list(running.values()) + procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    return scrapes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sluice", default=str(REPO / "build" / "sluice"))
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--step", type=float, default=2)
    ap.add_argument("--dashboard", default=str(DASHBOARD))
    ap.add_argument("--out", default=str(REPO / "docs" / "img" / "grafana-preview.png"))
    ap.add_argument("--save-samples", help="write the scrapes as JSON")
    ap.add_argument("--samples", help="draw from scrapes saved by --save-samples")
    a = ap.parse_args()
    dash = json.loads(pathlib.Path(a.dashboard).read_text())
    for p in dash["panels"]:
        for t in p.get("targets", []):
            parse_query(t["expr"])
    if a.samples:
        raw = json.loads(pathlib.Path(a.samples).read_text())
        scrapes = [(t, {(n, tuple(tuple(x) for x in l)): v for n, l, v in s}) for t, s in raw]
    else:
        scrapes = collect(a.sluice, a.duration, a.step)
    if a.save_samples:
        pathlib.Path(a.save_samples).write_text(json.dumps(
            [(t, [(n, l, v) for (n, l), v in s.items()]) for t, s in scrapes]))
    note = ("Preview drawn by scripts/grafana-preview.py (not Grafana): the dashboard's own queries "
            "on %d scrapes of a live sluice over %.0f s of load, %s UTC"
            % (len(scrapes), scrapes[-1][0] - scrapes[0][0],
               time.strftime("%Y-%m-%d %H:%M", time.gmtime(scrapes[-1][0]))))
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dash["panels"])
    out = pathlib.Path(a.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = pathlib.Path(tmp) / "dashboard.html"
        page.write_text(render_html(dash, scrapes, note))
        screenshot(page, out, 24 * COL_W + 20, rows * ROW_H + 60)
    print("grafana-preview: %s (%d scrapes)" % (out, len(scrapes)))


if __name__ == "__main__":
    sys.exit(main())
