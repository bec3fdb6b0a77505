'use strict';
// Errors in Node's idiom (code, errno, syscall, address, port, message), and
// the AbortSignal and timeout options of Promise-returning operations.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const fs = require('fs');
const { asyncloop, newLoop } = require('./_helpers');
const { sockets, constants, AbortError } = asyncloop;

async function freePort() {
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address();
  await new Promise((r) => probe.close(r));
  return port;
}

test('a refused connection is a Node system error: code, errno, syscall, address, port', async (tc) => {
  const loop = newLoop(tc);
  const port = await freePort();
  // What node:net reports for the same connection, for comparison.
  const nodeErr = await new Promise((resolve) => {
    net.connect(port, '127.0.0.1').on('error', resolve);
  });
  const err = await loop.createConnection('127.0.0.1', port, {}).then(() => null, (e) => e);
  assert.ok(err instanceof Error);
  for (const key of ['code', 'errno', 'syscall', 'address', 'port', 'message']) {
    assert.equal(err[key], nodeErr[key], `${key}: ${err[key]} (node:net: ${nodeErr[key]})`);
  }
  assert.equal(err.code, 'ECONNREFUSED');
  assert.equal(err.errno, -111);
  assert.equal(err.aloopCode, 'ALOOP_ECONNREFUSED');
  assert.equal(err.message, `connect ECONNREFUSED 127.0.0.1:${port}`);
});

test('a port in use: listen EADDRINUSE with the address', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, () => ({}));
  const err = await loop.createServer('127.0.0.1', server.port, () => ({}), { reuseAddress: false })
    .then(() => null, (e) => e);
  assert.equal(err.code, 'EADDRINUSE');
  assert.equal(err.errno, -98);
  assert.equal(err.syscall, 'listen');
  assert.equal(err.address, '127.0.0.1');
  assert.equal(err.port, server.port);
  server.close();
  await server.waitClosed();
});

test('errors of synchronous calls and of the library have Node codes', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, () => ({}));
  const t = await loop.createConnection('127.0.0.1', server.port, {});
  t.abort();
  assert.throws(() => t.write('x'), (e) => e instanceof Error && e.code === 'ERR_ASYNCLOOP_CLOSED' &&
    e.errno === asyncloop.codes.ALOOP_ECLOSED && e.aloopCode === 'ALOOP_ECLOSED');
  const fut = loop.createFuture();
  assert.throws(() => fut.result(), { code: 'ERR_INVALID_STATE', aloopCode: 'ALOOP_ESTATE' });
  // A name lookup that fails: ENOTFOUND with syscall getaddrinfo and the name.
  const e = await loop.getaddrinfo('not-a-number', 80, { flags: constants.AI_NUMERICHOST })
    .then(() => null, (x) => x);
  assert.equal(e.code, 'ENOTFOUND');
  assert.equal(e.syscall, 'getaddrinfo');
  assert.equal(e.hostname, 'not-a-number');
  assert.equal(e.message, 'getaddrinfo ENOTFOUND not-a-number');
  assert.ok(e.detail, 'the resolver\'s reason is kept in detail');
  server.close();
  await server.waitClosed();
});

test('a reset connection reaches connectionLost as ECONNRESET', async (tc) => {
  const loop = newLoop(tc);
  const node = net.createServer((s) => { s.on('data', () => s.resetAndDestroy()); });
  await new Promise((r) => node.listen(0, '127.0.0.1', r));
  tc.after(() => node.close());
  const lost = new Promise((resolve) => {
    loop.createConnection('127.0.0.1', node.address().port, { connectionLost: resolve })
      .then((t) => t.write('x'));
  });
  const err = await lost;
  assert.ok(err instanceof Error);
  assert.equal(err.code, 'ECONNRESET');
  assert.equal(err.errno, -104);
});

test('AbortSignal cancels an operation: AbortError, and the library forgets it', async (tc) => {
  const loop = newLoop(tc);
  const [a, b] = sockets.pair();
  tc.after(() => { fs.closeSync(a); fs.closeSync(b); });
  const ac = new AbortController();
  const pending = loop.sockRecv(a, 100, { signal: ac.signal });
  setTimeout(() => ac.abort(new Error('enough')), 20);
  const err = await pending.then(() => null, (e) => e);
  assert.ok(err instanceof AbortError);
  assert.equal(err.name, 'AbortError');
  assert.equal(err.code, 'ABORT_ERR');
  assert.equal(err.cause.message, 'enough');
  // The cancelled receive never takes data: the next one gets it all.
  fs.writeSync(b, 'hello');
  assert.equal((await loop.sockRecv(a, 100)).toString(), 'hello');
  // An already aborted signal rejects at once, without starting anything.
  await assert.rejects(loop.sockRecv(a, 100, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  await assert.rejects(loop.sockRecv(a, 100, { signal: 'nope' }), TypeError);
});

test('timeout (ms) rejects with ETIMEDOUT and cancels', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, () => ({}));
  const t = await loop.createConnection('127.0.0.1', server.port, {});
  server.close();
  const started = Date.now();
  // waitClosed waits for the open connection: the timeout ends the wait.
  const err = await server.waitClosed({ timeout: 50 }).then(() => null, (e) => e);
  assert.ok(Date.now() - started >= 45);
  assert.equal(err.code, 'ETIMEDOUT');
  t.close();
  await server.waitClosed();
  // AbortSignal.timeout works too.
  const [a, b] = sockets.pair();
  tc.after(() => { fs.closeSync(a); fs.closeSync(b); });
  await assert.rejects(loop.sockRecv(a, 10, { signal: AbortSignal.timeout(20) }), { name: 'AbortError' });
  await assert.rejects(loop.sockRecv(a, 10, { timeout: -1 }), RangeError);
});

test('an aborted connection that completed anyway is closed, never leaked', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, () => ({}));
  for (let i = 0; i < 20; i++) {
    const ac = new AbortController();
    const p = loop.createConnection('127.0.0.1', server.port, {}, { signal: ac.signal });
    // Abort at once or a little later: the connect may have finished in
    // the library before the abort reaches it.
    if (i % 2) ac.abort(); else setImmediate(() => ac.abort());
    await p.then((t) => t.close(), (e) => assert.equal(e.name, 'AbortError'));
  }
  // Every connection the server accepted is closed again (waitClosed waits
  // for them), and no client transport is left (close() would throw EBUSY).
  server.close();
  await server.waitClosed({ timeout: 2000 });
  loop.close();
});
