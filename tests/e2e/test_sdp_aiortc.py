"""aiortc and headless Chromium judge sluice's WHIP/WHEP SDP answers
(src/media/sdp.c, shared with RTSP) before any WebRTC session code exists: the peer
makes an offer (WHIP: sendonly audio + video + data channel; WHEP: recvonly
audio + video), the unit-test binary answers it (`sdp_test --answer`, built
next to SLUICE_BIN), and the peer must accept the answer with the codecs and
directions we chose. The work is done by tests/data/sdp/aiortc_check.py and
chromium_check.py, which can also be run by hand."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from conftest import SLUICE_BIN

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_aiortc_accepts_our_answers():
    pytest.importorskip("aiortc")
    helper = pathlib.Path(SLUICE_BIN).resolve().parent / "sdp_test"
    if not os.access(helper, os.X_OK):
        pytest.skip(f"{helper} not built (it is a unit test of the same build)")
    run = subprocess.run([sys.executable, str(REPO / "tests/data/sdp/aiortc_check.py"), str(helper)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "whip: aiortc accepted the answer" in run.stdout
    assert "whep: aiortc accepted the answer" in run.stdout


@pytest.mark.browser
def test_chromium_accepts_our_answers():
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("no chromium")
    helper = pathlib.Path(SLUICE_BIN).resolve().parent / "sdp_test"
    if not os.access(helper, os.X_OK):
        pytest.skip(f"{helper} not built (it is a unit test of the same build)")
    run = subprocess.run([sys.executable, str(REPO / "tests/data/sdp/chromium_check.py"), str(helper)],
                         capture_output=True, text=True, timeout=150, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "whip: chromium accepted the answer" in run.stdout
    assert "whep: chromium accepted the answer" in run.stdout
