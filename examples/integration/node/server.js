#!/usr/bin/env node
// The business server: round-trip auth validator, webhook receiver and RPC handler on one
// port (Node.js built-ins only). Run:
//
//   WEBHOOK_SECRET='same as webhooks.secret' node server.js
//
// Environment: PORT (3000), BIND (127.0.0.1), WEBHOOK_SECRET, DB (events.jsonl).
"use strict";
const http = require("http");
const validator = require("./validator");
const webhook = require("./webhook");
const rpc = require("./rpc");

const MAX_BODY = 1 << 20; // a hard cap on what we read from anyone
const secret = process.env.WEBHOOK_SECRET || "";
if (!secret) console.log("warning: WEBHOOK_SECRET is not set: every webhook is refused");
const store = new webhook.Store(process.env.DB || "events.jsonl");

function answer(res, [status, doc]) {
  const data = Buffer.from(JSON.stringify(doc));
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": data.length });
  res.end(data);
}

function route(req, body) {
  if (req.method !== "POST") return [405, { error: "POST only" }];
  if (req.url === "/webhook") return webhook.receive(store, secret, req.headers, body); // raw bytes
  let doc;
  try {
    doc = JSON.parse(body.toString("utf8"));
  } catch {
    return [400, { error: "not JSON" }];
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) return [400, { error: "not a JSON object" }];
  switch (req.url) {
    case "/validateCredentials": return validator.validate(doc);
    case "/invalidateCredentials": return validator.invalidate(doc);
    case "/rpc": return rpc.handle(doc);
    default: return [404, { error: "not found" }];
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > MAX_BODY) {
      answer(res, [413, { error: "body too large" }]);
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on("end", () => answer(res, route(req, Buffer.concat(chunks))));
});

const port = Number(process.env.PORT || 3000);
const bind = process.env.BIND || "127.0.0.1";
server.listen(port, bind, () => console.log(`listening on http://${bind}:${port}`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
