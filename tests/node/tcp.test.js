'use strict';
// TCP over real loopback sockets: servers, connections, echo, EOF, flow
// control, errors.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const crypto = require('crypto');
const { asyncloop, deferred, runNode, newLoop } = require('./_helpers');
const { Loop, Transport, Server } = asyncloop;

/** A server protocol that echoes everything and records its events. */
function echoFactory(events = []) {
  return () => ({
    connectionMade(t) { this.t = t; events.push('made'); },
    dataReceived(d) { this.t.write(d); },
    eofReceived() { events.push('eof'); return false; },
    connectionLost(err) { events.push(err === null ? 'lost' : `lost:${err.code}`); },
  });
}

/** A client protocol collecting bytes; resolves `until(n)` at n bytes. */
function collector() {
  const chunks = [];
  let size = 0;
  const waiters = [];
  const lost = deferred();
  return {
    lost: lost.promise,
    bytes: () => Buffer.concat(chunks),
    until(n) {
      if (size >= n) return Promise.resolve();
      return new Promise((r) => waiters.push([n, r]));
    },
    protocol: {
      made: false,
      eof: false,
      connectionMade() { this.made = true; },
      dataReceived(d) {
        assert.ok(Buffer.isBuffer(d));
        chunks.push(d);
        size += d.length;
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (size >= waiters[i][0]) { waiters[i][1](); waiters.splice(i, 1); }
        }
      },
      eofReceived() { this.eof = true; return false; },
      connectionLost(err) { lost.resolve(err); },
    },
  };
}

test('echo 1 MiB over loopback intact, with Promises', async (tc) => {
  const loop = newLoop(tc);
  const events = [];
  const server = await loop.createServer('127.0.0.1', 0, echoFactory(events));
  assert.ok(server instanceof Server);
  assert.equal(server.isServing(), true);
  assert.ok(server.port > 0);
  assert.deepEqual(server.sockname, { host: '127.0.0.1', port: server.port });

  const c = collector();
  const t = await loop.createConnection('127.0.0.1', server.port, c.protocol);
  assert.ok(t instanceof Transport);
  assert.equal(c.protocol.made, true, 'connectionMade ran before the promise resolved');
  assert.equal(t.getProtocol(), c.protocol);
  assert.deepEqual(t.peername, { host: '127.0.0.1', port: server.port });
  assert.equal(t.sockname.host, '127.0.0.1');
  assert.equal(typeof t.getExtraInfo('socket'), 'number');
  assert.equal(t.getExtraInfo('nope', 'dflt'), 'dflt');

  const payload = crypto.randomBytes(1 << 20);
  for (let off = 0; off < payload.length; off += 65536) t.write(payload.subarray(off, off + 65536));
  await c.until(payload.length);
  assert.equal(c.bytes().length, payload.length);
  assert.ok(c.bytes().equals(payload), '1 MiB came back intact');

  t.close();
  assert.equal(t.isClosing(), true);
  assert.equal(await c.lost, null);
  server.close();
  assert.equal(server.isServing(), false);
  await server.waitClosed();
  assert.deepEqual(events, ['made', 'eof', 'lost']);
  loop.close();
});

test('strings, TypedArrays and DataViews can be written', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, echoFactory());
  const c = collector();
  const t = await loop.createConnection('127.0.0.1', server.port, () => c.protocol);
  t.write('héllo ');
  t.write(new Uint16Array([0x6968, 0x2021])); // "hi! " little-endian
  const ab = new ArrayBuffer(4);
  new Uint8Array(ab).set([0x78, 0x64, 0x76, 0x78]); // "xdvx"
  t.write(new DataView(ab, 1, 2)); // "dv": offsets are honoured
  t.write(new Uint8Array(ab).subarray(3)); // "x"
  t.writelines([Buffer.from('-a'), '-b']);
  const expected = Buffer.concat([Buffer.from('héllo '), Buffer.from([0x68, 0x69, 0x21, 0x20]),
                                  Buffer.from('dvx-a-b')]);
  await c.until(expected.length);
  await new Promise((r) => setTimeout(r, 20)); // nothing more arrives
  assert.equal(c.bytes().toString('hex'), expected.toString('hex'));
  assert.throws(() => t.write(42), TypeError);
  assert.throws(() => t.write({ length: 3 }), TypeError);
  t.close();
  await c.lost;
  server.close();
  await server.waitClosed();
  loop.close();
});

test('connection refused rejects with ALOOP_ECONNREFUSED', async (tc) => {
  const loop = newLoop(tc);
  // A port that was just free.
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const events = [];
  await assert.rejects(
    loop.createConnection('127.0.0.1', port, { connectionMade() { events.push('made'); } }),
    (err) => {
      assert.ok(err instanceof Error);
      assert.equal(err.code, 'ECONNREFUSED');
      assert.equal(err.errno, -111);
      return true;
    });
  assert.deepEqual(events, [], 'no protocol callback on a failed connection');
  loop.close();
});

test('invalid addresses reject, never crash', async (tc) => {
  const loop = newLoop(tc);
  await assert.rejects(loop.createConnection('127.0.0.1', 70000, {}), (e) => typeof e.code === 'string');
  await assert.rejects(loop.createConnection('not an address at all\u0001', 80, {}), (e) => typeof e.code === 'string' && e.errno < 0);
  await assert.rejects(loop.createConnection(12, 80, {}), TypeError);
  await assert.rejects(loop.createServer('127.0.0.1', 'x', () => ({})), TypeError);
  await assert.rejects(loop.createServer('127.0.0.1', 0, null), TypeError);
  loop.close();
});

test('a port in use rejects with ALOOP_EADDRINUSE', async (tc) => {
  const loop = newLoop(tc);
  const a = await loop.createServer('127.0.0.1', 0, echoFactory());
  await assert.rejects(loop.createServer('127.0.0.1', a.port, echoFactory()),
                       { code: 'EADDRINUSE', errno: -98 });
  a.close();
  await a.waitClosed();
  loop.close();
});

test('interoperates with Node net: a Node client against an asyncloop server', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, echoFactory());
  const sock = net.connect(server.port, '127.0.0.1');
  const data = crypto.randomBytes(200000);
  const chunks = [];
  let n = 0;
  const got = new Promise((resolve) => sock.on('data', (d) => {
    chunks.push(d);
    n += d.length;
    if (n >= data.length) resolve();
  }));
  sock.write(data);
  await got;
  assert.ok(Buffer.concat(chunks).equals(data));
  sock.end();
  await new Promise((r) => sock.on('close', r));
  server.close();
  await server.waitClosed();
  loop.close();
});

test('writeEof: the server sees EOF and may still answer (half-close)', async (tc) => {
  const loop = newLoop(tc);
  const serverSide = deferred();
  const server = await loop.createServer('127.0.0.1', 0, () => {
    const received = [];
    return {
      connectionMade(t) { this.t = t; },
      dataReceived(d) { received.push(d); },
      eofReceived() {
        this.t.write(`got ${Buffer.concat(received).toString()}`);
        this.t.close();
        return true;
      },
      connectionLost(err) { serverSide.resolve(err); },
    };
  });
  const c = collector();
  const t = await loop.createConnection('127.0.0.1', server.port, c.protocol);
  assert.equal(t.canWriteEof(), true);
  t.write('request');
  t.writeEof();
  assert.throws(() => t.write('late'), (e) => e.code === 'EPIPE' || e.code === 'ERR_ASYNCLOOP_CLOSED');
  assert.equal(await c.lost, null);
  assert.equal(c.bytes().toString(), 'got request');
  assert.equal(c.protocol.eof, true);
  assert.equal(await serverSide.promise, null);
  server.close();
  await server.waitClosed();
  loop.close();
});

test('pauseReading stops dataReceived until resumeReading', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, echoFactory());
  const c = collector();
  const t = await loop.createConnection('127.0.0.1', server.port, c.protocol);
  assert.equal(t.isReading(), true);
  t.pauseReading();
  assert.equal(t.isReading(), false);
  t.write('ping');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(c.bytes().length, 0, 'nothing delivered while paused');
  t.resumeReading();
  assert.equal(t.isReading(), true);
  await c.until(4);
  assert.equal(c.bytes().toString(), 'ping');
  t.close();
  await c.lost;
  assert.equal(t.isClosing(), true);
  assert.equal(t.isReading(), false);
  server.close();
  await server.waitClosed();
  loop.close();
});

test('flow control: pauseWriting/resumeWriting around the write buffer limits', async (tc) => {
  const loop = newLoop(tc);
  // The server does not read until told to, so the client's buffer fills.
  let serverT;
  const serverMade = deferred();
  const server = await loop.createServer('127.0.0.1', 0, () => ({
    connectionMade(t) { serverT = t; t.pauseReading(); serverMade.resolve(); },
    dataReceived() {},
  }));
  const calls = [];
  const resumed = deferred();
  const t = await loop.createConnection('127.0.0.1', server.port, {
    pauseWriting() { calls.push('pause'); },
    resumeWriting() { calls.push('resume'); resumed.resolve(); },
  });
  await serverMade.promise;
  t.setWriteBufferLimits(4096);
  assert.deepEqual(t.getWriteBufferLimits(), { low: 1024, high: 4096 });
  const chunk = Buffer.alloc(1 << 20, 0x61);
  for (let i = 0; i < 16 && calls.length === 0; i++) t.write(chunk);
  assert.deepEqual(calls, ['pause']);
  assert.ok(t.getWriteBufferSize() > 4096, `buffer ${t.getWriteBufferSize()}`);
  serverT.resumeReading();
  await resumed.promise;
  assert.deepEqual(calls, ['pause', 'resume']);
  assert.ok(t.getWriteBufferSize() <= 1024);
  assert.throws(() => t.setWriteBufferLimits(10, 20), RangeError);
  t.setWriteBufferLimits();
  assert.deepEqual(t.getWriteBufferLimits(), { low: 16384, high: 65536 });
  t.abort();
  serverT.close();
  server.close();
  await server.waitClosed();
  loop.close();
});

test('abort drops buffered data; the peer sees the connection end', async (tc) => {
  const loop = newLoop(tc);
  const lostOnServer = deferred();
  const server = await loop.createServer('127.0.0.1', 0, () => ({
    connectionLost(err) { lostOnServer.resolve(err); },
  }));
  const c = collector();
  const t = await loop.createConnection('127.0.0.1', server.port, c.protocol);
  t.abort();
  assert.equal(await c.lost, null);
  const err = await lostOnServer.promise;
  assert.ok(err === null || err.code === 'ECONNRESET', String(err && err.code));
  assert.throws(() => t.write('x'), { code: 'ERR_ASYNCLOOP_CLOSED' });
  t.close(); // harmless after the end
  server.close();
  await server.waitClosed();
  loop.close();
});

test('many concurrent connections each get their own protocol', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, echoFactory());
  const N = 20;
  const clients = await Promise.all(Array.from({ length: N }, async (_, i) => {
    const c = collector();
    const t = await loop.createConnection('127.0.0.1', server.port, c.protocol);
    t.write(`client-${i}`);
    return { c, t, i };
  }));
  for (const { c, t, i } of clients) {
    await c.until(`client-${i}`.length);
    assert.equal(c.bytes().toString(), `client-${i}`);
    t.close();
    await c.lost;
  }
  server.close();
  await server.waitClosed();
  loop.close();
});

test('the loop cannot close while a server or transport lives (ALOOP_EBUSY)', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, echoFactory());
  assert.throws(() => loop.close(), { code: 'EBUSY' });
  const c = collector();
  const t = await loop.createConnection('127.0.0.1', server.port, c.protocol);
  server.close();
  assert.throws(() => loop.close(), { code: 'EBUSY' });
  t.close();
  await c.lost;
  await server.waitClosed();
  loop.close();
  assert.equal(loop.isClosed(), true);
});

test('waitClosed waits for the accepted connections to end', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, echoFactory());
  const c = collector();
  const t = await loop.createConnection('127.0.0.1', server.port, c.protocol);
  t.write('x');
  await c.until(1);
  server.close();
  let closed = false;
  const w = server.waitClosed().then(() => { closed = true; });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(closed, false, 'a connection is still open');
  t.close();
  await w;
  assert.equal(closed, true);
  loop.close();
});

// node:test fails a test on any uncaughtException, so these run in a child.
test('exceptions in protocol methods reach uncaughtException; the connection goes on', async () => {
  const r = await runNode(`
    const { Loop } = require(process.env.ASYNCLOOP_BINDING);
    const seen = [];
    process.on('uncaughtException', (e) => seen.push(e.message));
    (async () => {
      const loop = new Loop();
      const server = await loop.createServer('127.0.0.1', 0, () => ({
        connectionMade(tr) { this.t = tr; },
        dataReceived(d) { this.t.write(d); throw new Error('thrown in dataReceived'); },
      }));
      let got = '';
      let lost;
      const closed = new Promise((r) => { lost = r; });
      let echoed;
      const back = new Promise((r) => { echoed = r; });
      const tr = await loop.createConnection('127.0.0.1', server.port, {
        dataReceived(d) { got += d; if (got.length >= 3) echoed(); },
        connectionLost: () => lost(),
      });
      tr.write('abc');
      await back;
      tr.close();
      await closed;
      server.close();
      await server.waitClosed();
      loop.close();
      console.log(JSON.stringify({ got, seen }));
    })();
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { got: 'abc', seen: ['thrown in dataReceived'] });
});

test('an exception in the protocol factory refuses that connection only', async () => {
  const r = await runNode(`
    const { Loop } = require(process.env.ASYNCLOOP_BINDING);
    const seen = [];
    process.on('uncaughtException', (e) => seen.push(e.message));
    (async () => {
      const loop = new Loop();
      let n = 0;
      const server = await loop.createServer('127.0.0.1', 0, () => {
        if (n++ === 0) throw new Error('factory failed');
        return { connectionMade(tr) { this.t = tr; }, dataReceived(d) { this.t.write(d); } };
      });
      const connect = () => new Promise(async (resolve) => {
        let got = '';
        const tr = await loop.createConnection('127.0.0.1', server.port, {
          dataReceived(d) { got += d; if (got === 'ok') tr.close(); },
          connectionLost: () => resolve(got),
        });
        // The first connection may already be closed by the server.
        if (!tr.isClosing()) tr.write('ok');
      });
      const first = await connect();
      const second = await connect();
      server.close();
      await server.waitClosed();
      loop.close();
      console.log(JSON.stringify({ first, second, seen }));
    })();
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { first: '', second: 'ok', seen: ['factory failed'] });
});

test('createServer with startServing: false accepts only after startServing()', async (tc) => {
  const loop = newLoop(tc);
  const server = await loop.createServer('127.0.0.1', 0, echoFactory(), { startServing: false, backlog: 10 });
  assert.equal(server.isServing(), false);
  const c = collector();
  const connecting = loop.createConnection('127.0.0.1', server.port, c.protocol);
  server.startServing();
  assert.equal(server.isServing(), true);
  const t = await connecting;
  t.write('go');
  await c.until(2);
  t.close();
  await c.lost;
  server.close();
  await server.waitClosed();
  loop.close();
});

test('addReader/addWriter watch a file descriptor (a FIFO)', async () => {
  const fs = require('fs');
  const os = require('os');
  const path = require('path');
  const { execFileSync } = require('child_process');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aloop-node-'));
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  try {
    const loop = new Loop();
    const writable = deferred();
    loop.addWriter(fd, (tag) => { writable.resolve(tag); }, 'w');
    assert.equal(await writable.promise, 'w');
    assert.equal(loop.removeWriter(fd), true);
    assert.equal(loop.removeWriter(fd), false);

    const readable = deferred();
    loop.addReader(fd, () => {
      const buf = Buffer.alloc(16);
      const n = fs.readSync(fd, buf, 0, 16, null);
      readable.resolve(buf.subarray(0, n).toString());
    });
    assert.throws(() => loop.close(), { code: 'EBUSY' });
    fs.writeSync(fd, 'fifo!');
    assert.equal(await readable.promise, 'fifo!');
    assert.equal(loop.removeReader(fd), true);
    loop.close();
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true });
  }
});

test('options: several hosts, localAddr, family, sock for servers and connections', async (tc) => {
  const loop = newLoop(tc);
  const { sockets } = asyncloop;
  // Several hosts: one listening socket each (IPv6 when the machine has it).
  let server;
  try {
    server = await loop.createServer(['127.0.0.1', '::1'], 0, echoFactory());
    assert.equal(server.sockets.length, 2);
  } catch (e) {
    server = await loop.createServer(['127.0.0.1'], 0, echoFactory());
  }
  assert.deepEqual(server.address(), { address: '127.0.0.1', family: 'IPv4', port: server.port });
  // localAddr binds the client end first.
  const probe = sockets.create(4);
  sockets.bind(probe, { host: '127.0.0.1', port: 0 });
  const localPort = sockets.name(probe).port;
  sockets.close(probe);
  const c = collector();
  const t = await loop.createConnection('127.0.0.1', server.port, c.protocol,
    { localAddr: { host: '127.0.0.1', port: localPort } });
  assert.equal(t.localPort, localPort);
  assert.equal(t.remoteFamily, 'IPv4');
  t.close();
  await c.lost;
  // family restricts a name's addresses; Happy Eyeballs accepts a delay in ms.
  const c2 = collector();
  const t2 = await loop.createConnection('localhost', server.port, c2.protocol,
    { family: 4, happyEyeballsDelay: 250 });
  assert.equal(t2.remoteAddress, '127.0.0.1');
  t2.close();
  await c2.lost;
  // sock: a server on a bound socket, a connection on a connected one.
  const lfd = sockets.create(4);
  sockets.bind(lfd, { host: '127.0.0.1', port: 0 });
  const s2 = await loop.createServer(null, 0, echoFactory(), { sock: lfd });
  assert.equal(s2.sockets[0].fd, lfd);
  const cfd = sockets.create(4);
  await loop.sockConnect(cfd, { host: '127.0.0.1', port: s2.port });
  const c3 = collector();
  const t3 = await loop.createConnection(null, 0, c3.protocol, { sock: cfd });
  t3.write('via sock');
  await c3.until(8);
  assert.equal(c3.bytes().toString(), 'via sock');
  t3.close();
  await c3.lost;
  for (const s of [server, s2]) {
    s.close();
    await s.waitClosed();
  }
});
