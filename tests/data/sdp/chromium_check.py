#!/usr/bin/python3
"""Makes headless Chromium judge sluice's SDP answers: a page makes a WHIP
offer (sendonly audio + video + a data channel) and a WHEP offer (recvonly
audio + video), posts each to this script, which answers with
`sdp_test --answer whip|whep`; the page must accept the answer with
setRemoteDescription and report the negotiated codecs and directions.
With --save DIR the offers Chromium made are written there (this is how
tests/data/sdp/chromium_*_offer.sdp were captured). Run by hand:

    /usr/bin/python3 tests/data/sdp/chromium_check.py build-asan/sdp_test [--save DIR]

Prints one line per case and exits non-zero on any failure."""
import http.server
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

PAGE = b"""<!doctype html><script>
async function run(mode) {
  const pc = new RTCPeerConnection({bundlePolicy: 'max-bundle'});
  const dir = mode === 'whip' ? 'sendonly' : 'recvonly';
  pc.addTransceiver('audio', {direction: dir});
  pc.addTransceiver('video', {direction: dir});
  if (mode === 'whip') pc.createDataChannel('chat');
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const r = await fetch('/offer?' + mode, {method: 'POST', body: pc.localDescription.sdp});
  if (!r.ok) throw new Error(mode + ': sdp_test: ' + await r.text());
  await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
  const out = pc.getTransceivers().map((t) => {
    const p = (mode === 'whip' ? t.sender : t.receiver).getParameters();
    return t.mid + ':' + t.currentDirection + ':' + (p.codecs || []).map((c) => c.mimeType + '/' + c.payloadType).join(',');
  });
  pc.close();
  return out;
}
(async () => {
  const res = {};
  for (const mode of ['whip', 'whep']) {
    try { res[mode] = {ok: true, got: await run(mode)}; } catch (e) { res[mode] = {ok: false, error: String(e)}; }
  }
  await fetch('/result', {method: 'POST', body: JSON.stringify(res)});
})();
</script>"""


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build-asan/sdp_test"
    save = sys.argv[sys.argv.index("--save") + 1] if "--save" in sys.argv else None
    result = {}
    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(PAGE)

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path.startswith("/offer?"):
                mode = self.path.split("?", 1)[1]
                if save:
                    pathlib.Path(save, f"chromium_{mode}_offer.sdp").write_bytes(body)
                run = subprocess.run([binary, "--answer", mode], input=body, capture_output=True, check=False)
                self.send_response(200 if run.returncode == 0 else 400)
                self.end_headers()
                self.wfile.write(run.stdout if run.returncode == 0 else run.stderr)
                return
            result.update(json.loads(body))
            self.send_response(204)
            self.end_headers()
            done.set()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("no chromium")
        return 77
    # Chromium's helper processes (zygote, crashpad) can outlive the browser process and
    # still write into the profile: the whole process group is stopped, and a profile file
    # written while the folder is removed is not an error of the test.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                                 f"--user-data-dir={profile}", "--no-first-run",
                                 f"http://127.0.0.1:{server.server_port}/"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            finished = done.wait(90)
        finally:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(10)
                    break
                except subprocess.TimeoutExpired:
                    continue
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # helpers left in the group
            except ProcessLookupError:
                pass
    server.shutdown()
    if not finished:
        print("chromium reported nothing within 90 s")
        return 1
    rc = 0
    for mode in ("whip", "whep"):
        r = result.get(mode, {"ok": False, "error": "missing"})
        want = "sendonly" if mode == "whip" else "recvonly"
        if r["ok"] and all(f":{want}:" in g and g.split(":", 2)[2] for g in r["got"]):
            print(f"{mode}: chromium accepted the answer: {' '.join(r['got'])}")
        else:
            print(f"{mode}: FAILED: {r}")
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
