// The ES module entry: named exports from index.mjs, and from index.js
// itself through Node's CommonJS named-export detection.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { version, errName, strerror, Loop, TransportStream, codes } from '../../bindings/node/index.mjs';
import * as viaCjs from '../../bindings/node/index.js';
import asyncloopDefault from '../../bindings/node/index.mjs';

const require = createRequire(import.meta.url);

test('named ESM exports are the CommonJS module\'s objects', async () => {
  const cjs = require('../../bindings/node/index.js');
  assert.equal(Loop, cjs.Loop);
  assert.equal(asyncloopDefault, cjs);
  assert.equal(typeof version.string, 'string');
  assert.equal(errName(codes.ALOOP_EBADF), 'ALOOP_EBADF');
  assert.equal(strerror(-111), 'connection refused');
  assert.equal(TransportStream, cjs.TransportStream);
  // Every export of index.js is a named export of index.mjs, and Node
  // detects them in index.js itself.
  const mjs = await import('../../bindings/node/index.mjs');
  for (const name of Object.keys(cjs)) {
    assert.equal(mjs[name], cjs[name], `index.mjs exports ${name}`);
    assert.equal(viaCjs[name], cjs[name], `index.js exports ${name} to ESM`);
  }
});

test('a loop works from ESM', async () => {
  const loop = new Loop();
  const v = await new Promise((resolve) => loop.callLater(1, resolve, 'ok'));
  assert.equal(v, 'ok');
  loop.close();
});
