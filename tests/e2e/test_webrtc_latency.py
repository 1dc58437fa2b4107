"""WebRTC glass-to-glass smoke test: WHIP -> WHEP with a time stamp drawn into the pixels.

bench/g2g.py's aiortc publisher draws its wall-clock time into every frame (48 bits as
16x16 blocks, a marker and a CRC-8); its decoding aiortc viewer reads the stamp back from
each decoded picture and records decoded - stamp. Checked here:
- the stamp reader refuses a picture without a stamp and one with a bit flipped (so a
  read stamp is a real one);
- through sluice (aiortc WHIP publisher -> sluice -> aiortc WHEP viewer, H.264), the stamp
  is read on >= 80% of decoded frames and the latency p95 is under 1 s. That bound is a
  sanity check that fails when the path breaks (frames stuck, a GOP replayed late, the
  picture garbled), not a performance assert: bench/whep-g2g measures (p50 ~40 ms, p95
  49 - 87 ms on loopback on the loaded shared machine, docs/performance.md).
About 10 s with a release build; marked slow (so left out of the ASan run): there it took
17 - 25 s on the shared 2-core machine, and a latency figure from an instrumented server
says nothing.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, T
from test_webrtc import needs_aiortc, start, wait_live, whep_url, whip_url

pytestmark = pytest.mark.exclusive  # measures rates and delays: run alone (conftest.py)

PY = os.environ.get("PYTHON3", "/usr/bin/python3")
G2G = str(REPO / "bench" / "g2g.py")
sys.path.insert(0, str(REPO / "bench"))


def test_stamp_reader_refuses_what_is_not_a_stamp():
    np = pytest.importorskip("numpy")
    import g2g
    canvas = g2g.Canvas()
    yuv = canvas.next_yuv(1796524498528)
    y = yuv[:g2g.HEIGHT].copy()
    assert g2g.read_stamp(y) == 1796524498528
    blank = np.full_like(y, 128)
    assert g2g.read_stamp(blank) is None
    # Flip one data block (row 1, column 3): the CRC must catch it.
    bx, by = g2g.X0 + 3 * g2g.BLOCK, g2g.Y0 + 1 * g2g.BLOCK
    y[by:by + g2g.BLOCK, bx:bx + g2g.BLOCK] = 255 - y[by:by + g2g.BLOCK, bx:bx + g2g.BLOCK]
    assert g2g.read_stamp(y) is None
    assert g2g.read_stamp(y[:40, :100]) is None  # smaller than the stamp: no read out of bounds


@pytest.mark.slow
@needs_aiortc
def test_whip_to_whep_stamp_read_and_latency_sane(sluice_factory, procs):
    srv = start(sluice_factory)
    procs.start([PY, G2G, "whip", whip_url(srv, "g2g"), "--seconds", str(T(40))], "g2g-whip",
                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    wait_live(srv, "g2g")
    p = subprocess.run([PY, G2G, "whep", whep_url(srv, "g2g"), "--seconds", str(T(10)),
                        "--frames", "120", "--settle", "0.5"],
                       capture_output=True, text=True, timeout=T(40))
    evs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    done = [e for e in evs if e.get("event") == "done"]
    assert p.returncode == 0 and done, (p.returncode, evs, p.stderr[-3000:], srv.log_tail(60))
    r = done[0]
    assert r["decoded"] >= 60, r
    assert r["read"] >= 0.8 * r["decoded"], ("stamp unreadable on too many frames", r)
    assert r["measured"] >= 30, r
    assert r["p95_ms"] < 1000, ("WHIP -> WHEP latency p95 over 1 s", r)
