// The SDK's hand-written types (clients/web/index.d.ts) checked against a
// small app that uses them (types/use.ts) with the TypeScript compiler
// pinned in package-lock.json: `tsc --noEmit -p types/tsconfig.json` must
// pass. use.ts also holds misuses marked @ts-expect-error, so declarations
// that have grown too loose (any) fail this test as well. No browser, no
// server: about a second.
//
//   node --test types.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

test('index.d.ts type-checks against an app using the SDK (tsc --noEmit)', () => {
  const tsc = path.join(HERE, 'node_modules', '.bin', 'tsc');
  assert.ok(fs.existsSync(tsc), `${tsc} missing: run npm ci in tests/browser (typescript is pinned in package-lock.json)`);
  const r = spawnSync(tsc, ['--noEmit', '-p', path.join(HERE, 'types', 'tsconfig.json')], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, `tsc reported:\n${r.stdout}${r.stderr}`);
});
