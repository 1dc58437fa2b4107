#!/usr/bin/env node
// Part 3: a Server API client (docs/openapi.yaml; Red5 Pro's /api/v1 paths and envelope).
//
//   API_URL=http://127.0.0.1:5080 API_TOKEN=... node api_client.js streams live
//   node api_client.js clients live
//   node api_client.js kick live <client id>
//   node api_client.js record-start live stream1 [saveas]
//   node api_client.js record-stop live stream1
//   node api_client.js invoke live <method> '[params as JSON]'
//   node api_client.js invoke-client live <client id> <method> '[params as JSON]'
//
// Prints the answer's `data` as JSON; on an error prints the status and message and exits 1.
// The token goes in the Authorization header, never in the URL (URLs end up in logs).
// Uses the fetch built into Node 18+.
"use strict";

class ApiError extends Error {
  constructor(status, message) {
    super(`HTTP ${status}: ${message}`);
    this.status = status;
  }
}

class SluiceApi {
  constructor(baseUrl, token) {
    this.base = baseUrl.replace(/\/+$/, "") + "/api/v1/";
    this.token = token;
  }

  async call(method, path, { params, body } = {}) {
    let url = this.base + path;
    if (params) url += "?" + new URLSearchParams(params);
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30000),
    });
    const text = await res.text();
    let doc = null;
    try {
      doc = JSON.parse(text);
    } catch {
      // not JSON: handled below
    }
    if (!res.ok) throw new ApiError(res.status, (doc && doc.message) || res.statusText);
    return doc.data; // {status: "success", code: 200, data, timestamp}
  }

  // Names of the streams being published in app.
  streams(app) { return this.call("GET", `applications/${enc(app)}/streams`); }
  // Connected clients of app: [{id, remote_address, ...}].
  clients(app) { return this.call("GET", `applications/${enc(app)}/clients`); }
  // Disconnects one client.
  kick(app, clientId) { return this.call("DELETE", `applications/${enc(app)}/clients/${enc(clientId)}`); }
  // Records the live stream to {data_dir}/{app}/streams/{saveas or stream}.flv.
  startRecord(app, stream, saveas) {
    return this.call("GET", `applications/${enc(app)}/streams/${enc(stream)}/action/startrecord`,
      { params: saveas ? { saveas } : undefined });
  }
  stopRecord(app, stream) {
    return this.call("GET", `applications/${enc(app)}/streams/${enc(stream)}/action/stoprecord`);
  }
  // Calls an application method (a server handler or the app's rpc_url).
  invoke(app, method, params = []) {
    return this.call("POST", `applications/${enc(app)}/invoke`, { body: { method, parameters: params } });
  }
  // Calls a method on one client; resolves to {client, status, value}.
  invokeClient(app, clientId, method, params = [], timeoutMs = 5000) {
    return this.call("POST", `applications/${enc(app)}/clients/${enc(clientId)}/invoke`,
      { body: { method, params, timeout_ms: timeoutMs } });
  }
}

const enc = encodeURIComponent;

async function main(argv) {
  const api = new SluiceApi(process.env.API_URL || "http://127.0.0.1:5080", process.env.API_TOKEN || "");
  const commands = {
    streams: [1, (app) => api.streams(app)],
    clients: [1, (app) => api.clients(app)],
    kick: [2, (app, id) => api.kick(app, id)],
    "record-start": [2, (app, stream, saveas) => api.startRecord(app, stream, saveas)],
    "record-stop": [2, (app, stream) => api.stopRecord(app, stream)],
    invoke: [2, (app, method, params = "[]") => api.invoke(app, method, JSON.parse(params))],
    "invoke-client": [3, (app, id, method, params = "[]") =>
      api.invokeClient(app, id, method, JSON.parse(params))],
  };
  const [cmd, ...args] = argv;
  if (!Object.hasOwn(commands, cmd) || args.length < commands[cmd][0]) {
    console.error("usage: node api_client.js " +
      "streams|clients|kick|record-start|record-stop|invoke|invoke-client ...");
    return 2;
  }
  try {
    console.log(JSON.stringify(await commands[cmd][1](...args), null, 2));
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 1;
  }
  return 0;
}

module.exports = { SluiceApi, ApiError };

if (require.main === module) main(process.argv.slice(2)).then((rc) => { process.exitCode = rc; });
