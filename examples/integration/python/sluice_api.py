#!/usr/bin/env python3
"""Part 3: a Server API client (docs/openapi.yaml; Red5 Pro's /api/v1 paths and envelope).

    API_URL=http://127.0.0.1:5080 API_TOKEN=... python3 sluice_api.py streams live
    python3 sluice_api.py clients live
    python3 sluice_api.py kick live <client id>
    python3 sluice_api.py record-start live stream1 [saveas]
    python3 sluice_api.py record-stop live stream1
    python3 sluice_api.py invoke live <method> '[params as JSON]'
    python3 sluice_api.py invoke-client live <client id> <method> '[params as JSON]'

Prints the answer's `data` as JSON; on an error prints the status and message and exits 1.
The token goes in the Authorization header, never in the URL (URLs end up in logs).
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__("HTTP %d: %s" % (status, message))
        self.status = status


class SluiceApi:
    def __init__(self, base_url, token, timeout=30):
        self.base = base_url.rstrip("/") + "/api/v1/"
        self.token = token
        self.timeout = timeout

    def _call(self, method, path, params=None, body=None):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                doc = json.loads(r.read())
        except urllib.error.HTTPError as e:  # Red5's error envelope: {status, code, message}
            try:
                message = json.loads(e.read()).get("message", e.reason)
            except ValueError:
                message = e.reason
            raise ApiError(e.code, message) from None
        return doc["data"]  # {status: "success", code: 200, data, timestamp}

    @staticmethod
    def _q(s):
        return urllib.parse.quote(s, safe="")

    def streams(self, app):
        """Names of the streams being published in app."""
        return self._call("GET", "applications/%s/streams" % self._q(app))

    def clients(self, app):
        """Connected clients of app: [{id, remote_address, ...}]."""
        return self._call("GET", "applications/%s/clients" % self._q(app))

    def kick(self, app, client_id):
        """Disconnects one client."""
        return self._call("DELETE", "applications/%s/clients/%s" % (self._q(app), self._q(client_id)))

    def start_record(self, app, stream, saveas=None):
        """Records the live stream to {data_dir}/{app}/streams/{saveas or stream}.flv."""
        return self._call("GET", "applications/%s/streams/%s/action/startrecord"
                          % (self._q(app), self._q(stream)), {"saveas": saveas} if saveas else None)

    def stop_record(self, app, stream):
        return self._call("GET", "applications/%s/streams/%s/action/stoprecord"
                          % (self._q(app), self._q(stream)))

    def invoke(self, app, method, params=()):
        """Calls an application method (a server handler or the app's rpc_url)."""
        return self._call("POST", "applications/%s/invoke" % self._q(app),
                          body={"method": method, "parameters": list(params)})

    def invoke_client(self, app, client_id, method, params=(), timeout_ms=5000):
        """Calls a method on one client; returns {client, status, value}."""
        return self._call("POST", "applications/%s/clients/%s/invoke" % (self._q(app), self._q(client_id)),
                          body={"method": method, "params": list(params), "timeout_ms": timeout_ms})


def main(argv):
    api = SluiceApi(os.environ.get("API_URL", "http://127.0.0.1:5080"), os.environ.get("API_TOKEN", ""))
    commands = {
        "streams": lambda app: api.streams(app),
        "clients": lambda app: api.clients(app),
        "kick": lambda app, cid: api.kick(app, cid),
        "record-start": lambda app, stream, saveas=None: api.start_record(app, stream, saveas),
        "record-stop": lambda app, stream: api.stop_record(app, stream),
        "invoke": lambda app, method, params="[]": api.invoke(app, method, json.loads(params)),
        "invoke-client": lambda app, cid, method, params="[]":
            api.invoke_client(app, cid, method, json.loads(params)),
    }
    if len(argv) < 2 or argv[1] not in commands:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        print(json.dumps(commands[argv[1]](*argv[2:]), indent=2))
    except ApiError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    except TypeError:
        print("wrong arguments for %s" % argv[1], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
