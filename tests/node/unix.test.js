'use strict';
// Unix stream sockets: servers and connections on paths and in the abstract
// namespace, accepted sockets, interop with node:net; writelines, buffered
// protocols, getRunningLoop.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { asyncloop, deferred, newLoop, runNode } = require('./_helpers');
const { sockets } = asyncloop;

function tmpPath(tc, name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aloop-node-'));
  tc.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, name);
}

function echoFactory() {
  return () => ({
    connectionMade(t) { this.t = t; },
    dataReceived(d) { this.t.write(d); },
  });
}

/** A client protocol that collects bytes until n arrived. */
function collector(n) {
  const chunks = [];
  let size = 0;
  const full = deferred();
  const lost = deferred();
  return {
    full: full.promise,
    lost: lost.promise,
    bytes: () => Buffer.concat(chunks),
    dataReceived(d) {
      chunks.push(d);
      size += d.length;
      if (size >= n) full.resolve();
    },
    connectionLost(err) { lost.resolve(err); },
  };
}

test('echo over a Unix socket file; addresses are paths; the file goes at close', async (tc) => {
  const loop = newLoop(tc);
  const p = tmpPath(tc, 's.sock');
  const server = await loop.createUnixServer(p, echoFactory());
  assert.equal(server.address(), p);
  assert.equal(server.sockname, p);
  assert.equal(server.port, null);
  assert.ok(fs.statSync(p).isSocket());
  const payload = crypto.randomBytes(300000);
  const c = collector(payload.length);
  const t = await loop.createUnixConnection(p, c);
  assert.equal(t.peername, p);
  assert.equal(t.sockname, '');
  assert.equal(t.remoteAddress, p);
  assert.equal(t.remotePort, undefined);
  t.write(payload);
  await c.full;
  assert.ok(c.bytes().equals(payload));
  t.close();
  assert.equal(await c.lost, null);
  server.close();
  await server.waitClosed();
  assert.equal(fs.existsSync(p), false, 'cleanupSocket removes the file');
});

test('the abstract namespace: @name and Node\'s \\0name are the same socket', async (tc) => {
  const loop = newLoop(tc);
  const name = `aloop-node-${process.pid}-${Date.now()}`;
  const server = await loop.createUnixServer(`@${name}`, echoFactory());
  assert.equal(server.sockname, `@${name}`);
  const c = collector(5);
  const t = await loop.createUnixConnection(`\0${name}`, c);
  assert.equal(t.peername, `@${name}`);
  t.write('hello');
  await c.full;
  assert.equal(c.bytes().toString(), 'hello');
  // A plain socket reaches it too (sock_connect takes either spelling).
  const fd = sockets.create('unix');
  await loop.sockConnect(fd, `\0${name}`);
  assert.equal(sockets.peerName(fd), `@${name}`);
  sockets.close(fd);
  t.close();
  await c.lost;
  server.close();
  await server.waitClosed();
});

test('a stale socket file is replaced; a missing socket is ENOENT, a regular file EADDRINUSE', async (tc) => {
  const loop = newLoop(tc);
  const p = tmpPath(tc, 'stale.sock');
  // A socket file left behind by a dead server.
  const fd = sockets.create('unix');
  sockets.bind(fd, p);
  sockets.close(fd);
  assert.ok(fs.statSync(p).isSocket());
  const server = await loop.createUnixServer(p, echoFactory());
  server.close();
  await server.waitClosed();

  const missing = tmpPath(tc, 'missing.sock');
  const err = await loop.createUnixConnection(missing, {}).then(() => null, (e) => e);
  assert.equal(err.code, 'ENOENT');
  assert.equal(err.syscall, 'connect');
  assert.equal(err.path, missing);
  assert.equal(err.message, `connect ENOENT ${missing}`);

  const file = tmpPath(tc, 'plain');
  fs.writeFileSync(file, 'x');
  await assert.rejects(loop.createUnixServer(file, echoFactory()), { code: 'EADDRINUSE', syscall: 'listen' });
});

test('node:net clients against an asyncloop Unix server, and the reverse', async (tc) => {
  const loop = newLoop(tc);
  const p = tmpPath(tc, 'interop.sock');
  const server = await loop.createUnixServer(p, echoFactory());
  const got = await new Promise((resolve, reject) => {
    const s = net.connect(p, () => s.write('ping'));
    s.on('data', (d) => { resolve(d.toString()); s.destroy(); });
    s.on('error', reject);
  });
  assert.equal(got, 'ping');
  server.close();
  await server.waitClosed();

  const p2 = tmpPath(tc, 'node.sock');
  const nodeServer = net.createServer((s) => s.pipe(s));
  await new Promise((r) => nodeServer.listen(p2, r));
  tc.after(() => nodeServer.close());
  const c = collector(4);
  const t = await loop.createUnixConnection(p2, c);
  t.write('pong');
  await c.full;
  assert.equal(c.bytes().toString(), 'pong');
  t.close();
  await c.lost;
});

test('connectAcceptedSocket wraps a connected fd (a socketpair)', async (tc) => {
  const loop = newLoop(tc);
  const [a, b] = sockets.pair();
  const ca = collector(3);
  const cb = collector(3);
  const ta = await loop.connectAcceptedSocket(a, ca);
  const tb = await loop.connectAcceptedSocket(b, cb);
  ta.write('abc');
  tb.write('xyz');
  await Promise.all([ca.full, cb.full]);
  assert.equal(ca.bytes().toString(), 'xyz');
  assert.equal(cb.bytes().toString(), 'abc');
  assert.equal(ta.getExtraInfo('socket'), a);
  ta.close();
  assert.equal(await cb.lost, null, 'the peer sees EOF, then the end');
  await ca.lost;
  // A non-socket fd is refused and stays the caller's.
  const fd = fs.openSync(__filename, 'r');
  await assert.rejects(loop.connectAcceptedSocket(fd, {}), { code: 'ENOTSOCK' });
  fs.closeSync(fd);
});

test('writelines sends every buffer and string in order, in one call', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, echoFactory());
  const parts = [];
  for (let i = 0; i < 300; i++) parts.push(i % 3 === 0 ? `s${i};` : crypto.randomBytes(i * 7));
  const expected = Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x) : x)));
  const c = collector(expected.length);
  const t = await loop.createConnection('127.0.0.1', server.port, c);
  t.writelines(parts);
  t.writelines((function* gen() { yield 'tail'; })());
  await c.full;
  const got = c.bytes();
  assert.ok(got.subarray(0, expected.length).equals(expected));
  assert.throws(() => t.writelines([1, 2]), TypeError);
  t.close();
  await c.lost;
  server.close();
  await server.waitClosed();
});

test('buffered protocols: the library reads straight into getBuffer()\'s memory', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, echoFactory());
  const payload = crypto.randomBytes(1 << 20);
  const received = Buffer.alloc(payload.length);
  let filled = 0;
  let calls = 0;
  const done = deferred();
  const buf = Buffer.alloc(65536);
  const proto = {
    getBuffer(sizehint) {
      assert.equal(typeof sizehint, 'number');
      calls++;
      return buf;
    },
    bufferUpdated(n) {
      buf.copy(received, filled, 0, n);
      filled += n;
      if (filled === payload.length) done.resolve();
    },
    eofReceived() { return false; },
    connectionLost() {},
  };
  const t = await loop.createConnection('127.0.0.1', server.port, proto);
  t.write(payload);
  await done.promise;
  assert.ok(received.equals(payload));
  assert.ok(calls >= payload.length / buf.length);

  // Switching protocols: plain, then buffered again, on the same transport.
  const plain = collector(3);
  t.setProtocol(plain);
  t.write('abc');
  await plain.full;
  assert.equal(plain.bytes().toString(), 'abc');
  let got = '';
  const again = deferred();
  const small = new Uint8Array(2);
  t.setProtocol({
    getBuffer: () => small,
    bufferUpdated(n) { got += Buffer.from(small.subarray(0, n)).toString(); if (got.length === 5) again.resolve(); },
  });
  t.write('hello');
  await again.promise;
  assert.equal(got, 'hello');
  t.abort();
  server.close();
  await server.waitClosed();
});

test('a getBuffer that returns no memory ends the transport, not the process', async () => {
  const r = await runNode(`
    const { Loop } = require(process.env.ASYNCLOOP_BINDING);
    process.on('uncaughtException', (e) => console.log('uncaught', e.name));
    (async () => {
      const loop = new Loop();
      loop.setExceptionHandler(() => {});
      const server = await loop.createServer('127.0.0.1', 0, () => ({
        connectionMade(t) { t.write('x'); },
      }));
      await loop.createConnection('127.0.0.1', server.port, {
        getBuffer: () => 'not memory',
        bufferUpdated() {},
        connectionLost(err) { console.log('lost', err && err.constructor.name); server.close(); },
      });
    })();
  `);
  assert.equal(r.code, 0, r.stderr);
  // Both, in either order: the exception is reported once the iteration ends.
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['lost Error', 'uncaught TypeError']);
});

test('getRunningLoop: the loop inside its callbacks, an error elsewhere', async (tc) => {
  const loop = newLoop(tc);
  assert.throws(() => asyncloop.getRunningLoop(), { code: 'ERR_ASYNCLOOP_NO_LOOP' });
  const inside = await new Promise((r) => loop.callSoon(() => r(asyncloop.getRunningLoop())));
  assert.equal(inside, loop);
  assert.equal(await new Promise((r) => loop.callSoon(() => r(asyncloop.getEventLoop()))), loop);
  const server = await loop.createServer('127.0.0.1', 0, () => ({
    dataReceived() { this.seen = asyncloop.getRunningLoop(); },
    connectionMade(t) { this.t = t; },
    connectionLost() {},
  }));
  const other = newLoop(tc);
  const seen = await new Promise((resolve) => {
    other.callSoon(() => resolve(asyncloop.getRunningLoop()));
  });
  assert.equal(seen, other);
  server.close();
  await server.waitClosed();
});
