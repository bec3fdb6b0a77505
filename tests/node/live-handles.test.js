'use strict';
// liveHandles() (aloop_live_handles): the process's count of live library
// handles rises with a loop, a server and connections, and returns to where
// it started once everything is closed and V8 collected the JS wrappers (the
// binding releases a closed loop's or server's handle when its object is
// collected), which is what a leak test relies on.
const test = require('node:test');
const assert = require('node:assert/strict');
const v8 = require('v8');
const vm = require('vm');
const { asyncloop } = require('./_helpers');
const { Loop } = asyncloop;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

async function echoOnce(base) {
  const loop = new Loop();
  assert.equal(asyncloop.liveHandles(), base + 1, 'the loop');
  const server = await loop.createServer('127.0.0.1', 0, () => ({
    connectionMade(t) { this.t = t; },
    dataReceived(d) { this.t.write(d); },
  }));
  let lost;
  const gotLost = new Promise((r) => { lost = r; });
  let echoed;
  const gotEcho = new Promise((r) => { echoed = r; });
  const t = await loop.createConnection('127.0.0.1', server.port, {
    dataReceived() { echoed(); },
    connectionLost() { lost(); },
  });
  t.write('ping');
  await gotEcho;
  // the loop, the server, the client's transport and the accepted one
  assert.equal(asyncloop.liveHandles(), base + 4);
  t.close();
  await gotLost;
  server.close();
  await server.waitClosed();
  loop.close();
}

test('liveHandles counts handles and returns to its start after close', async () => {
  const base = asyncloop.liveHandles();
  assert.equal(typeof base, 'number');
  await echoOnce(base);
  for (let i = 0; i < 100 && asyncloop.liveHandles() !== base; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(asyncloop.liveHandles(), base);
});
