'use strict';
// TLS through the library's crypto/tls with Node's options: servers and
// clients with PEM strings or Buffers, verification (rejectUnauthorized),
// servername, ALPN, versions, client certificates, startTls, Unix sockets,
// and interop with node:tls. Fixtures: tests/c/fixtures (tests/tools/gencerts).
const test = require('node:test');
const assert = require('node:assert/strict');
const tls = require('tls');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { asyncloop, deferred, newLoop } = require('./_helpers');
const { createSecureContext, SecureContext } = asyncloop;

const FIX = path.join(__dirname, '..', 'c', 'fixtures');
const read = (name) => fs.readFileSync(path.join(FIX, name));
const CA = read('ca.pem').toString(); // a string ...
const SERVER = { cert: read('server.pem'), key: read('server-key.pem') }; // ... and Buffers

function echoFactory(seen = []) {
  return () => ({
    connectionMade(t) { this.t = t; seen.push(t); },
    dataReceived(d) { this.t.write(d); },
  });
}

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
    eofReceived() { return false; },
    connectionLost(err) { lost.resolve(err); },
  };
}

async function tlsServer(loop, options = {}, seen = []) {
  return loop.createServer('127.0.0.1', 0, echoFactory(seen), { tls: { ...SERVER, ...options } });
}

test('a TLS echo: PEM Buffers and strings, details of the session', async (tc) => {
  const loop = newLoop(tc);
  const accepted = [];
  const server = await tlsServer(loop, {}, accepted);
  const payload = crypto.randomBytes(200000);
  const c = collector(payload.length);
  const t = await loop.createConnection('127.0.0.1', server.port, c, { tls: { ca: CA } });
  assert.equal(t.encrypted, true);
  assert.match(t.getTlsVersion(), /^TLSv1\.[23]$/);
  assert.equal(t.getCipher().version, t.getTlsVersion());
  assert.match(t.getCipher().standardName, /^TLS_/);
  assert.equal(t.alpnProtocol, false);
  const cert = t.getPeerX509Certificate();
  assert.ok(cert instanceof crypto.X509Certificate);
  assert.match(cert.subject, /CN=localhost/);
  assert.ok(cert.checkIssued(new crypto.X509Certificate(CA)));
  assert.equal(t.getExtraInfo('peercert').fingerprint256, cert.fingerprint256);
  assert.ok(t.getExtraInfo('sslcontext') instanceof SecureContext);
  assert.equal(t.canWriteEof(), false);
  t.write(payload);
  await c.full;
  assert.ok(c.bytes().equals(payload));
  assert.equal(accepted[0].encrypted, true);
  assert.equal(accepted[0].getPeerX509Certificate(), undefined, 'no client certificate');
  t.close();
  assert.equal(await c.lost, null);
  server.close();
  await server.waitClosed();
});

test('verification is on by default: unknown CA, wrong name and expiry reject with Node codes', async (tc) => {
  const loop = newLoop(tc);
  const server = await tlsServer(loop);
  // The test CA is not a system CA.
  await assert.rejects(loop.createConnection('127.0.0.1', server.port, {}, { tls: true }),
    (e) => e.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' && e.aloopCode === 'ALOOP_ECERT' && /authority/.test(e.message));
  // rejectUnauthorized: false accepts it.
  const t = await loop.createConnection('127.0.0.1', server.port, {}, { tls: { rejectUnauthorized: false } });
  assert.equal(t.encrypted, true);
  t.close();
  // servername: the name checked (and sent); the cert is for localhost.
  await assert.rejects(loop.createConnection('127.0.0.1', server.port, {},
    { tls: { ca: CA }, servername: 'example.com' }), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  const ok = await loop.createConnection('127.0.0.1', server.port, {}, { tls: { ca: CA, servername: 'localhost' } });
  ok.close();
  server.close();
  await server.waitClosed();

  const wrong = await tlsServer(loop, { cert: read('wronghost.pem'), key: read('wronghost-key.pem') });
  await assert.rejects(loop.createConnection('127.0.0.1', wrong.port, {}, { tls: { ca: CA } }),
    { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  wrong.close();
  const expired = await tlsServer(loop, { cert: read('expired.pem'), key: read('expired-key.pem') });
  await assert.rejects(loop.createConnection('127.0.0.1', expired.port, {}, { tls: { ca: CA } }),
    { code: 'CERT_HAS_EXPIRED' });
  expired.close();
  await Promise.all([wrong.waitClosed(), expired.waitClosed()]);
});

test('ALPN and versions; bad options throw before anything starts', async (tc) => {
  const loop = newLoop(tc);
  const server = await tlsServer(loop, { ALPNProtocols: ['h2', 'http/1.1'] });
  const t = await loop.createConnection('127.0.0.1', server.port, {},
    { tls: { ca: CA, ALPNProtocols: ['http/1.1'], maxVersion: 'TLSv1.2' } });
  assert.equal(t.alpnProtocol, 'http/1.1');
  assert.equal(t.getTlsVersion(), 'TLSv1.2');
  t.close();
  const t13 = await loop.createConnection('127.0.0.1', server.port, {},
    { tls: { ca: CA, ALPNProtocols: [Buffer.from('h2')], minVersion: 'TLSv1.3' } });
  assert.equal(t13.alpnProtocol, 'h2');
  assert.equal(t13.getTlsVersion(), 'TLSv1.3');
  t13.close();
  // No common protocol: the server refuses the client.
  await assert.rejects(loop.createConnection('127.0.0.1', server.port, {},
    { tls: { ca: CA, ALPNProtocols: ['spdy/1'] } }), (e) => e.errno === asyncloop.codes.ALOOP_ETLS || e.code === 'ECONNRESET');
  assert.throws(() => createSecureContext({ minVersion: 'TLSv1' }), RangeError);
  assert.throws(() => createSecureContext({ cert: 42 }), TypeError);
  await assert.rejects(loop.createServer('127.0.0.1', 0, () => ({}), { tls: { cert: 'not PEM', key: 'x' } }),
    (e) => e.code === 'EINVAL');
  server.close();
  await server.waitClosed();
});

test('client certificates: requestCert, and a SecureContext reused by many clients', async (tc) => {
  const loop = newLoop(tc);
  const accepted = [];
  const server = await tlsServer(loop, { requestCert: true, ca: CA }, accepted);
  const ctx = createSecureContext({ ca: CA, cert: read('client.pem'), key: read('client-key.pem') });
  for (let i = 0; i < 3; i++) {
    const c = collector(2);
    const t = await loop.createConnection('127.0.0.1', server.port, c, { tls: ctx });
    t.write('hi');
    await c.full;
    t.close();
    await c.lost;
  }
  assert.match(accepted[0].getPeerX509Certificate().subject, /asyncloop test client/);
  // Without a certificate the server refuses the client.
  const refused = await loop.createConnection('127.0.0.1', server.port, collector(1), { tls: { ca: CA } })
    .then(async (t) => { t.write('x'); return t.getProtocol().lost; }, (e) => e);
  assert.ok(refused instanceof Error, 'the handshake or the connection fails');
  server.close();
  await server.waitClosed();
});

test('interop with node:tls: a Node client to an asyncloop server, and the reverse', async (tc) => {
  const loop = newLoop(tc);
  const server = await tlsServer(loop, { ALPNProtocols: ['x-test'] });
  const got = await new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: server.port, ca: CA, servername: 'localhost', ALPNProtocols: ['x-test'] },
      () => { assert.equal(s.alpnProtocol, 'x-test'); s.write('node->aloop'); });
    s.on('data', (d) => { resolve(d.toString()); s.end(); });
    s.on('error', reject);
  });
  assert.equal(got, 'node->aloop');
  server.close();
  await server.waitClosed();

  const nodeServer = tls.createServer({ ...SERVER }, (s) => s.pipe(s));
  await new Promise((r) => nodeServer.listen(0, '127.0.0.1', r));
  tc.after(() => nodeServer.close());
  const c = collector(11);
  const t = await loop.createConnection('localhost', nodeServer.address().port, c, { tls: { ca: CA }, family: 4 });
  t.write('aloop->node');
  await c.full;
  assert.equal(c.bytes().toString(), 'aloop->node');
  t.close();
  await c.lost;
});

test('startTls upgrades a plain connection on both sides (STARTTLS)', async (tc) => {
  const loop = newLoop(tc);
  const upgraded = deferred();
  const server = await loop.createServer('127.0.0.1', 0, () => ({
    connectionMade(t) { this.t = t; },
    dataReceived(d) {
      if (d.toString() === 'STARTTLS\n') {
        this.t.write('GO\n');
        loop.startTls(this.t, { ...SERVER, isServer: true }).then(upgraded.resolve, upgraded.reject);
      } else {
        this.t.write(Buffer.concat([Buffer.from('secure:'), d]));
      }
    },
  }));
  const go = deferred();
  const c = collector('secure:hello'.length);
  const t = await loop.createConnection('127.0.0.1', server.port, {
    dataReceived(d) { if (d.toString() === 'GO\n') go.resolve(); else c.dataReceived(d); },
    connectionLost: c.connectionLost,
  });
  assert.equal(t.encrypted, false);
  t.write('STARTTLS\n');
  await go.promise;
  const same = await loop.startTls(t, { ca: CA, servername: 'localhost' });
  assert.equal(same, t);
  assert.equal(t.encrypted, true);
  const st = await upgraded.promise;
  assert.equal(st.encrypted, true);
  t.write('hello');
  await c.full;
  assert.equal(c.bytes().toString(), 'secure:hello');
  // A failed upgrade rejects and closes the transport.
  const plain = await loop.createConnection('127.0.0.1', server.port, collector(1));
  await assert.rejects(loop.startTls(plain, { ca: CA, servername: 'localhost', timeout: 2000 }));
  t.close();
  await c.lost;
  server.close();
  await server.waitClosed();
});

test('TLS over a Unix socket', async (tc) => {
  const loop = newLoop(tc);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aloop-tls-'));
  tc.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const p = path.join(dir, 'tls.sock');
  const server = await loop.createUnixServer(p, echoFactory(), { tls: SERVER });
  const c = collector(6);
  const t = await loop.createUnixConnection(p, c, { tls: { ca: CA }, servername: 'localhost' });
  assert.equal(t.encrypted, true);
  t.write('secret');
  await c.full;
  assert.equal(c.bytes().toString(), 'secret');
  t.close();
  await c.lost;
  server.close();
  await server.waitClosed();
});

test('handshakeTimeout: a peer that never answers fails the handshake', async (tc) => {
  const loop = newLoop(tc);
  // A plain server that says nothing.
  const server = await loop.createServer('127.0.0.1', 0, () => ({}));
  const started = Date.now();
  await assert.rejects(loop.createConnection('127.0.0.1', server.port, {},
    { tls: { ca: CA, handshakeTimeout: 100 } }), { code: 'ETIMEDOUT' });
  assert.ok(Date.now() - started < 2000);
  server.close();
  await server.waitClosed();
});
