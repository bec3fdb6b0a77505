'use strict';
// A protocol library written once in C (examples/rpc, libaloop_rpc) on
// asyncloop's Node Loop: Loop.handle and Loop.wrapFuture. The same compiled
// library is loaded by tests/c/test-interop.c, tests/python/test_interop.py
// and tests/go/interop_test.go. It runs next to the JS host's own servers and
// timers; every byte is checked.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { asyncloop, newLoop, deferred } = require('./_helpers');

const makeRpc = require('../../examples/rpc/node');
const ROOT = path.resolve(__dirname, '..', '..');
const addon = process.env.ALOOP_RPC_LIBRARY
  ? path.join(path.dirname(process.env.ALOOP_RPC_LIBRARY), 'aloop_rpc.node')
  : path.join(ROOT, 'build', 'examples', 'aloop_rpc.node');
const skip = fs.existsSync(addon) ? false : `${addon} is not built`;

const OK = 0x80;
const ERR = 0x81;

function frame(id, kind, payload) {
  const h = Buffer.alloc(9);
  h.writeUInt32BE(payload.length + 5, 0);
  h.writeUInt32BE(id, 4);
  h[8] = kind;
  return Buffer.concat([h, payload]);
}

/** Parses frames out of a growing buffer. */
function frameReader() {
  let buf = Buffer.alloc(0);
  const frames = [];
  const waiters = [];
  return {
    push(d) {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const n = buf.readUInt32BE(0);
        frames.push({ id: buf.readUInt32BE(4), kind: buf[8], payload: buf.subarray(9, 4 + n) });
        buf = buf.subarray(4 + n);
      }
      while (waiters.length && frames.length) waiters.shift()(frames.shift());
    },
    next() {
      if (frames.length) return Promise.resolve(frames.shift());
      return new Promise((r) => waiters.push(r));
    },
  };
}

function sleepBuf(ms, data) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(ms, 0);
  return Buffer.concat([b, Buffer.from(data)]);
}

// After each test: the library released every object it allocated
// (clients, servers, connections, replies, requests).
test.afterEach(async () => {
  if (skip) return;
  const native = makeRpc.load();
  for (let i = 0; i < 100 && native.liveObjects() !== 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(native.liveObjects(), 0);
});

test('Loop.handle and wrapFuture argument checks', { skip }, async (tc) => {
  const loop = newLoop(tc);
  assert.equal(typeof loop.handle, 'bigint');
  assert.notEqual(loop.handle, 0n);
  assert.throws(() => loop.wrapFuture(1), TypeError);
  await assert.rejects(loop.wrapFuture(0n), TypeError);
  await assert.rejects(loop.wrapFuture(12345n), { code: 'EBADF' });
  const other = new asyncloop.Loop();
  other.close();
  assert.throws(() => other.handle, { code: 'ERR_ASYNCLOOP_CLOSED' });
});

test('every method, next to the host\'s own server, client and timers', { skip }, async (tc) => {
  const loop = newLoop(tc);
  const rpc = makeRpc(loop);
  assert.equal(rpc.native.version(), 1);
  const server = await rpc.startServer('127.0.0.1', 0);
  assert.ok(server.port > 0);
  const client = await rpc.connect('127.0.0.1', server.port);
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + 7) & 0xff;

  // The host's own line server on the same loop.
  const jsServer = await loop.createServer('127.0.0.1', 0, () => ({
    connectionMade(t) { this.t = t; this.buf = ''; },
    dataReceived(d) {
      this.buf += d.toString();
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.t.write(Buffer.from(`OK ${this.buf.slice(0, i).toUpperCase()}\n`));
        this.buf = this.buf.slice(i + 1);
      }
    },
  }));
  const ticks = [];
  const ticker = new Promise((resolve) => {
    const tick = () => {
      ticks.push(ticks.length);
      if (ticks.length < 6) loop.callLater(10, tick); else resolve();
    };
    loop.callLater(10, tick);
  });

  async function jsTraffic() {
    const lines = [];
    const got = deferred();
    let acc = '';
    const t = await loop.createConnection('127.0.0.1', jsServer.port, {
      dataReceived(d) {
        acc += d.toString();
        let i;
        while ((i = acc.indexOf('\n')) >= 0) {
          lines.push(acc.slice(0, i));
          acc = acc.slice(i + 1);
          if (lines.length === 50) got.resolve();
        }
      },
    });
    for (let i = 0; i < 50; i++) t.write(Buffer.from(`get /${i}\n`));
    await got.promise;
    assert.deepEqual(lines, Array.from({ length: 50 }, (_, i) => `OK GET /${i}`));
    t.close();
  }

  async function rpcTraffic() {
    assert.deepEqual(await client.call(rpc.ECHO, Buffer.from('hello')), Buffer.from('hello'));
    assert.deepEqual(await client.call(rpc.ECHO, Buffer.alloc(0)), Buffer.alloc(0));
    assert.deepEqual(await client.call(rpc.REVERSE, Buffer.from('abcdef')), Buffer.from('fedcba'));
    assert.ok((await client.call(rpc.ECHO, big)).equals(big));
    assert.ok((await client.call(rpc.REVERSE, big)).equals(Buffer.from(big).reverse()));
    const t0 = loop.time();
    assert.deepEqual(await client.call(rpc.SLEEP, sleepBuf(60, 'zzz')), Buffer.from('zzz'));
    assert.ok(loop.time() - t0 >= 55);
    await assert.rejects(client.call(rpc.FAIL, Buffer.from('no such key')),
      (e) => e.code === 'EIO' && /no such key/.test(e.message));
    const order = [];
    const calls = Array.from({ length: 20 }, (_, i) =>
      client.call(rpc.SLEEP, sleepBuf(2 * (20 - i), `k${i}`)).then((b) => {
        order.push(b.toString());
        return b.toString();
      }));
    assert.deepEqual(await Promise.all(calls), Array.from({ length: 20 }, (_, i) => `k${i}`));
    assert.equal(order[0], 'k19');
  }

  async function jsClientToCServer() {
    const r = frameReader();
    const t = await loop.createConnection('127.0.0.1', server.port, { dataReceived: (d) => r.push(d) });
    t.write(Buffer.concat([frame(7, rpc.ECHO, Buffer.from('from node')),
      frame(8, rpc.REVERSE, Buffer.from('xyz')), frame(9, rpc.FAIL, Buffer.from('bad'))]));
    assert.deepEqual(await r.next(), { id: 7, kind: OK, payload: Buffer.from('from node') });
    assert.deepEqual(await r.next(), { id: 8, kind: OK, payload: Buffer.from('zyx') });
    assert.deepEqual(await r.next(), { id: 9, kind: ERR, payload: Buffer.from('bad') });
    t.close();
  }

  await Promise.all([ticker, jsTraffic(), rpcTraffic(), jsClientToCServer()]);
  assert.deepEqual(ticks, [0, 1, 2, 3, 4, 5]);
  assert.equal(server.requests, 5 + 1 + 1 + 20 + 3);
  client.close();
  server.close();
  jsServer.close();
});

test('the C client calls a server written in JS', { skip }, async (tc) => {
  const loop = newLoop(tc);
  const rpc = makeRpc(loop);
  const jsServer = await loop.createServer('127.0.0.1', 0, () => {
    const r = frameReader();
    let t;
    (async () => {
      for (;;) {
        const f = await r.next();
        if (f.kind === rpc.ECHO) t.write(frame(f.id, OK, Buffer.concat([Buffer.from('js:'), f.payload])));
        else t.write(frame(f.id, ERR, Buffer.from('node says no')));
      }
    })();
    return { connectionMade(tr) { t = tr; }, dataReceived(d) { r.push(d); } };
  });
  const client = await rpc.connect('127.0.0.1', jsServer.port);
  const got = await Promise.all(Array.from({ length: 30 }, (_, i) =>
    client.call(rpc.ECHO, Buffer.from(String(i).repeat(100)))));
  got.forEach((b, i) => assert.equal(b.toString(), `js:${String(i).repeat(100)}`));
  await assert.rejects(client.call(rpc.REVERSE, Buffer.from('x')), /node says no/);
  client.close();
  jsServer.close();
});

test('JS answers the requests the C server hands over', { skip }, async (tc) => {
  const loop = newLoop(tc);
  const rpc = makeRpc(loop);
  const server = await rpc.startServer('127.0.0.1', 0);
  const client = await rpc.connect('127.0.0.1', server.port);
  const serving = (async () => {
    for (let i = 0; i < 11; i++) {
      const req = await server.recv();
      await new Promise((r) => setTimeout(r, 1)); // a Node timer between request and answer
      if (req.data.toString() === 'fail') req.respond(false, Buffer.from('node refused'));
      else req.respond(true, Buffer.concat([Buffer.from(req.data).reverse(), Buffer.from('!')]));
    }
  })();
  const got = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    client.call(rpc.HOST, Buffer.from(`q${i}`))));
  got.forEach((b, i) => assert.equal(b.toString(), `${i}q!`));
  await assert.rejects(client.call(rpc.HOST, Buffer.from('fail')), /node refused/);
  await serving;
  const waiting = server.recv();
  client.close();
  server.close();
  await assert.rejects(waiting, (e) => e.errno === asyncloop.codes.ALOOP_ECLOSED || /closed/.test(e.message));
});

test('a library error reaches the JS loop\'s exception handler', { skip }, async (tc) => {
  const loop = newLoop(tc);
  const rpc = makeRpc(loop);
  const seen = [];
  loop.setExceptionHandler((l, ctx) => seen.push(ctx));
  const server = await rpc.startServer('127.0.0.1', 0);
  const client = await rpc.connect('127.0.0.1', server.port);
  const pending = client.call(rpc.SLEEP, sleepBuf(500, 'x'));
  client.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1]));
  await assert.rejects(pending, (e) => e.code === 'ECONNRESET');
  assert.equal(seen.length, 1);
  assert.match(seen[0].message, /bad frame length \(4294967295\)/);
  assert.equal(seen[0].exception.code, 'EINVAL');
  client.close();
  server.close();
});

test('cancelling with a signal cancels the C future; late results are released', { skip }, async (tc) => {
  const loop = newLoop(tc);
  const rpc = makeRpc(loop);
  const server = await rpc.startServer('127.0.0.1', 0);
  const client = await rpc.connect('127.0.0.1', server.port);
  const ac = new AbortController();
  const slow = client.call(rpc.SLEEP, sleepBuf(30, 's'), { signal: ac.signal });
  ac.abort();
  await assert.rejects(slow, { name: 'AbortError' });
  await assert.rejects(client.call(rpc.SLEEP, sleepBuf(200, 't'), { timeout: 20 }), { code: 'ETIMEDOUT' });
  assert.deepEqual(await client.call(rpc.SLEEP, sleepBuf(250, 'after')), Buffer.from('after'));
  assert.equal(server.requests, 3);
  const r = await client.bench(2000, 16, 200);
  assert.equal(r, 0n);
  assert.equal(server.requests, 2003);
  client.close();
  server.close();
});
