'use strict';
// The stream.Duplex adapter: pipeline(), for await, back-pressure, half-close,
// over real loopback connections (TCP, TLS, Unix).
const test = require('node:test');
const assert = require('node:assert/strict');
const { pipeline } = require('stream/promises');
const { Readable, Writable, Duplex } = require('stream');
const crypto = require('crypto');
const net = require('net');
const { asyncloop, newLoop } = require('./_helpers');
const { TransportStream, toDuplex } = asyncloop;

/** A server whose connections are TransportStreams handled by `handle`. */
function streamServer(loop, handle, streamOptions) {
  return loop.createServer('127.0.0.1', 0, () => {
    const s = new TransportStream(streamOptions);
    s.once('connect', () => handle(s));
    return s;
  });
}

test('pipeline through an echo server; for await reads the answer', async (tc) => {
  const loop = newLoop(tc);
  const server = await streamServer(loop, (s) => pipeline(s, s).catch(() => {}));
  const payload = crypto.randomBytes(4 << 20);
  const client = new TransportStream();
  assert.ok(client instanceof Duplex);
  const t = await loop.createConnection('127.0.0.1', server.port, client);
  assert.equal(client.transport, t);
  const chunks = [];
  const reading = (async () => {
    for await (const chunk of client) chunks.push(chunk);
  })();
  // Many small chunks: the writable side's callbacks wait for resumeWriting.
  await pipeline(Readable.from((function* gen() {
    for (let off = 0; off < payload.length; off += 1000) yield payload.subarray(off, off + 1000);
  })()), client);
  await reading;
  assert.ok(Buffer.concat(chunks).equals(payload), 'the 4 MiB came back intact');
  await new Promise((r) => (client.closed ? r() : client.once('close', r)));
  server.close();
  await server.waitClosed();
});

test('back-pressure: a slow reader pauses the transport instead of buffering everything', async (tc) => {
  const loop = newLoop(tc);
  const total = 8 << 20;
  const node = net.createServer((s) => {
    const block = Buffer.alloc(65536, 'z');
    let sent = 0;
    const more = () => {
      while (sent < total) {
        sent += block.length;
        if (!s.write(block)) { s.once('drain', more); return; }
      }
      s.end();
    };
    more();
  });
  await new Promise((r) => node.listen(0, '127.0.0.1', r));
  tc.after(() => node.close());
  const client = new TransportStream({ highWaterMark: 16384 });
  const t = await loop.createConnection('127.0.0.1', node.address().port, client);
  let paused = 0;
  const pause = t.pauseReading.bind(t);
  t.pauseReading = () => { paused++; pause(); };
  let n = 0;
  await pipeline(client, new Writable({
    highWaterMark: 16384,
    write(chunk, enc, cb) { n += chunk.length; setImmediate(cb); },
  }));
  assert.equal(n, total);
  assert.ok(paused > 0, 'the transport was paused at least once');
});

test('half-close: end() sends EOF, and the peer can still answer (allowHalfOpen)', async (tc) => {
  const loop = newLoop(tc);
  const server = await streamServer(loop, async (s) => {
    let got = '';
    // (A plain `for await` destroys the stream when it ends, as with net.Socket.)
    for await (const c of s.iterator({ destroyOnReturn: false })) got += c;
    s.end(`got ${got.length} bytes`);
  }, { allowHalfOpen: true });
  const client = new TransportStream({ allowHalfOpen: true });
  await loop.createConnection('127.0.0.1', server.port, client);
  client.end('x'.repeat(100000));
  let answer = '';
  for await (const c of client) answer += c;
  assert.equal(answer, 'got 100000 bytes');
  server.close();
  await server.waitClosed();
});

test('toDuplex wraps a connected transport; destroy() aborts; errors surface as stream errors', async (tc) => {
  const loop = newLoop(tc);
  const server = await streamServer(loop, (s) => s.pipe(s));
  const t = await loop.createConnection('127.0.0.1', server.port, {});
  const s = toDuplex(t);
  assert.equal(t.getProtocol(), s);
  s.write('ping');
  const [first] = await Promise.all([new Promise((r) => s.once('data', r))]);
  assert.equal(first.toString(), 'ping');
  s.destroy();
  assert.equal(t.isClosing(), true);
  await new Promise((r) => s.once('close', r));

  // A peer that resets: the stream is destroyed with ECONNRESET.
  const node = net.createServer((c) => c.on('data', () => c.resetAndDestroy()));
  await new Promise((r) => node.listen(0, '127.0.0.1', r));
  tc.after(() => node.close());
  const r = new TransportStream();
  await loop.createConnection('127.0.0.1', node.address().port, r);
  r.write('x');
  const err = await new Promise((resolve) => r.once('error', resolve));
  assert.equal(err.code, 'ECONNRESET');
  server.close();
  await server.waitClosed();
});
