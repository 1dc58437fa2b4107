// Part 2: the webhook receiver (docs/integration/webhooks.md).
//
// sluice POSTs one JSON event per delivery, signed when `webhooks.secret` is set:
//   X-Sluice-Timestamp: <unix seconds of this attempt>
//   X-Sluice-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + raw body))
//   X-Sluice-Delivery:  <delivery id, the same on every retry>
//
// Deliveries are at least once: the same delivery can come again (a retry after a lost
// answer, a restart, an operator's redeliver). We store each delivery id once and answer
// 2xx to duplicates too, so sluice stops retrying them.
//
// Storage: Node 20 has no built-in SQLite (node:sqlite came in Node 22), so events go to a
// JSON-lines file, one event per line, with the ids kept in a Set (the index) rebuilt
// from the file at start. With a database, use its unique key on the id instead.
"use strict";
const crypto = require("crypto");
const fs = require("fs");

const TOLERANCE_S = 300; // refuse timestamps further than this from our clock (replays)

// True when signature is sluice's HMAC of timestamp + "." + body (raw bytes, a Buffer)
// and the timestamp is fresh.
function verify(secret, timestamp, signature, body, now = Date.now() / 1000) {
  if (!secret || !/^\d+$/.test(timestamp || "")) return false;
  if (Math.abs(now - Number(timestamp)) > TOLERANCE_S) return false;
  const want = "sha256=" + crypto.createHmac("sha256", secret)
    .update(timestamp + ".").update(body).digest("hex");
  const got = Buffer.from(String(signature || ""));
  return got.length === want.length && crypto.timingSafeEqual(got, Buffer.from(want));
}

class Store {
  constructor(path) {
    this.path = path;
    this.ids = new Set();
    if (fs.existsSync(path)) {
      for (const line of fs.readFileSync(path, "utf8").split("\n")) {
        if (!line.trim()) continue;
        try {
          this.ids.add(JSON.parse(line).id);
        } catch {
          // a line cut short by a crash: its delivery was not acknowledged, sluice sends it again
          console.log(`warning: ${path}: skipping a line that is not JSON`);
        }
      }
    }
  }

  // Stores the event; false when its id was already stored (a duplicate).
  add(event, raw) {
    if (this.ids.has(event.id)) return false;
    const row = { id: event.id, event: event.event, guid: event.guid ?? null,
                  received_at: Date.now(), body: raw.toString("utf8") };
    fs.appendFileSync(this.path, JSON.stringify(row) + "\n"); // one write per line
    this.ids.add(event.id);
    return true;
  }
}

// POST /webhook -> [HTTP status, JSON answer]
function receive(store, secret, headers, body) {
  if (!verify(secret, headers["x-sluice-timestamp"], headers["x-sluice-signature"], body)) {
    return [401, { error: "bad signature" }];
  }
  let event;
  try {
    event = JSON.parse(body.toString("utf8"));
  } catch {
    return [400, { error: "not JSON" }];
  }
  if (!event || typeof event.id !== "string" || typeof event.event !== "string") {
    return [400, { error: "not a sluice event" }];
  }
  const stored = store.add(event, body);
  console.log(`webhook: ${event.id} ${event.event} ${event.guid}${stored ? "" : " (duplicate, dropped)"}`);
  return [200, { stored }]; // any 2xx acknowledges, duplicates too
}

module.exports = { verify, Store, receive };
