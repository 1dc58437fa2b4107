#!/usr/bin/env python3
"""The business server: round-trip auth validator, webhook receiver and RPC handler on
one port (standard library only). Run:

    WEBHOOK_SECRET='same as webhooks.secret' python3 server.py

Environment: PORT (3000), BIND (127.0.0.1), WEBHOOK_SECRET, DB (events.sqlite).
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import rpc_handler
import validator
import webhook

MAX_BODY = 1 << 20  # a hard cap on what we read from anyone


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: sluice reuses its connections
    store = None
    secret = ""

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self.answer(411, {"error": "Content-Length required"})
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return self.answer(413, {"error": "body too large"})
        body = self.rfile.read(length)
        if self.path == "/webhook":  # verified on the raw bytes: parse after
            return self.answer(*webhook.receive(self.store, self.secret, self.headers, body))
        try:
            doc = json.loads(body)
        except ValueError:
            return self.answer(400, {"error": "not JSON"})
        if not isinstance(doc, dict):
            return self.answer(400, {"error": "not a JSON object"})
        if self.path == "/validateCredentials":
            return self.answer(*validator.validate(doc))
        if self.path == "/invalidateCredentials":
            return self.answer(*validator.invalidate(doc))
        if self.path == "/rpc":
            return self.answer(*rpc_handler.handle(doc))
        self.answer(404, {"error": "not found"})

    def answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass  # the parts print one line per request themselves


def main():
    Handler.secret = os.environ.get("WEBHOOK_SECRET", "")
    if not Handler.secret:
        print("warning: WEBHOOK_SECRET is not set: every webhook is refused", flush=True)
    Handler.store = webhook.Store(os.environ.get("DB", "events.sqlite"))
    addr = (os.environ.get("BIND", "127.0.0.1"), int(os.environ.get("PORT", "3000")))
    httpd = ThreadingHTTPServer(addr, Handler)
    print("listening on http://%s:%d" % addr, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
