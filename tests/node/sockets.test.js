'use strict';
// The nine sock_* operations on socket fds, and sendfile over a transport,
// over real loopback sockets and files.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const net = require('net');
const { asyncloop, deferred, newLoop } = require('./_helpers');
const { sockets } = asyncloop;

function tmpFile(tc, data) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aloop-sf-'));
  tc.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const p = path.join(dir, 'data.bin');
  fs.writeFileSync(p, data);
  return p;
}

/** A listening TCP socket on loopback and a connected client/server pair. */
async function tcpPair(loop, tc) {
  const lfd = sockets.create(4);
  sockets.bind(lfd, { host: '127.0.0.1', port: 0 });
  sockets.listen(lfd);
  const { port } = sockets.name(lfd);
  const cfd = sockets.create(4);
  const accepted = loop.sockAccept(lfd);
  await loop.sockConnect(cfd, { host: '127.0.0.1', port });
  const { fd: sfd, addr } = await accepted;
  tc.after(() => {
    for (const fd of [lfd, cfd, sfd]) {
      try { sockets.close(fd); } catch { /* closed by the test */ }
    }
  });
  return { lfd, cfd, sfd, port, addr };
}

test('sockAccept, sockConnect, sockSendall, sockRecv, sockRecvInto over TCP', async (tc) => {
  const loop = newLoop(tc);
  const { cfd, sfd, addr, port } = await tcpPair(loop, tc);
  assert.deepEqual(addr, sockets.name(cfd));
  assert.deepEqual(sockets.peerName(cfd), { host: '127.0.0.1', port });
  const payload = crypto.randomBytes(3 << 20);
  const sent = loop.sockSendall(cfd, payload);
  const got = [];
  let n = 0;
  while (n < payload.length) {
    const b = await loop.sockRecv(sfd, 1 << 20);
    assert.ok(b.length > 0);
    got.push(b);
    n += b.length;
  }
  assert.equal(await sent, undefined);
  assert.ok(Buffer.concat(got).equals(payload));
  // recv_into: into a slice of a bigger buffer.
  const big = Buffer.alloc(16, '.');
  const view = big.subarray(4, 12);
  await loop.sockSendall(sfd, 'hello');
  const k = await loop.sockRecvInto(cfd, view);
  assert.equal(k, 5);
  assert.equal(big.toString(), '....hello.......');
  // EOF: an empty Buffer.
  sockets.close(sfd);
  assert.equal((await loop.sockRecv(cfd, 10)).length, 0);
});

test('sockSendto, sockRecvfrom, sockRecvfromInto over UDP', async (tc) => {
  const loop = newLoop(tc);
  const a = sockets.create(4, 'dgram');
  const b = sockets.create(4, 'dgram');
  tc.after(() => { sockets.close(a); sockets.close(b); });
  sockets.bind(a, { host: '127.0.0.1', port: 0 });
  sockets.bind(b, { host: '127.0.0.1', port: 0 });
  const pa = sockets.name(a).port;
  const pb = sockets.name(b).port;
  assert.equal(await loop.sockSendto(b, 'first datagram', ['127.0.0.1', pa]), 14);
  const { data, addr } = await loop.sockRecvfrom(a, 100);
  assert.equal(data.toString(), 'first datagram');
  assert.deepEqual(addr, { host: '127.0.0.1', port: pb });
  // recvfrom_into with nbytes: a longer datagram is truncated.
  await loop.sockSendto(b, Buffer.from('0123456789'), { host: '127.0.0.1', port: pa });
  const buf = Buffer.alloc(8);
  const r = await loop.sockRecvfromInto(a, buf, 4);
  assert.equal(r.nbytes, 4);
  assert.deepEqual(r.addr, { host: '127.0.0.1', port: pb });
  assert.equal(buf.toString('latin1', 0, 4), '0123');
  // A receive that waits, served in order with the next datagram.
  const waiting = loop.sockRecvfrom(a, 100);
  await loop.sockSendto(b, 'later', ['127.0.0.1', pa]);
  assert.equal((await waiting).data.toString(), 'later');
});

test('sockSendfile sends a file (zero-copy) with offset and count; the file offset moves', async (tc) => {
  const loop = newLoop(tc);
  const { cfd, sfd } = await tcpPair(loop, tc);
  const content = crypto.randomBytes(500000);
  const file = fs.openSync(tmpFile(tc, content), 'r');
  tc.after(() => fs.closeSync(file));
  const sending = loop.sockSendfile(cfd, file, 1000, 300000);
  const got = [];
  let n = 0;
  while (n < 300000) {
    const b = await loop.sockRecv(sfd, 1 << 20);
    got.push(b);
    n += b.length;
  }
  assert.equal(await sending, 300000);
  assert.ok(Buffer.concat(got).equals(content.subarray(1000, 301000)));
  // count 0: to the end of the file.
  const rest = loop.sockSendfile(cfd, file, 400000);
  let m = 0;
  while (m < 100000) m += (await loop.sockRecv(sfd, 1 << 20)).length;
  assert.equal(await rest, 100000);
});

test('sockSendfile of a FIFO: ENOSYS without fallback, read and sent with it', async (tc) => {
  const loop = newLoop(tc);
  const { cfd, sfd } = await tcpPair(loop, tc);
  const fifo = tmpFile(tc, '') + '.fifo';
  require('child_process').execFileSync('mkfifo', [fifo]);
  const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const wfd = fs.openSync(fifo, fs.constants.O_WRONLY);
  tc.after(() => { fs.closeSync(rfd); });
  await assert.rejects(loop.sockSendfile(cfd, rfd, 0, 0, { fallback: false }), { code: 'ENOSYS' });
  fs.writeSync(wfd, 'through a fifo');
  fs.closeSync(wfd);
  // The fallback reads from the current position of the file (a FIFO has none).
  const sent = await loop.sockSendfile(cfd, rfd, 0, 14);
  assert.equal(sent, 14);
  assert.equal((await loop.sockRecv(sfd, 100)).toString(), 'through a fifo');
});

test('sock_* errors: ECONNREFUSED with the address, EBUSY on a transport\'s fd', async (tc) => {
  const loop = newLoop(tc);
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address();
  await new Promise((r) => probe.close(r));
  const fd = sockets.create(4);
  tc.after(() => sockets.close(fd));
  const err = await loop.sockConnect(fd, ['127.0.0.1', port]).then(() => null, (e) => e);
  assert.equal(err.code, 'ECONNREFUSED');
  assert.equal(err.syscall, 'connect');
  assert.equal(err.address, '127.0.0.1');
  assert.equal(err.port, port);

  const server = await loop.createServer('127.0.0.1', 0, () => ({}));
  const t = await loop.createConnection('127.0.0.1', server.port, {});
  await assert.rejects(loop.sockRecv(t.getExtraInfo('socket'), 10), { code: 'EBUSY' });
  await assert.rejects(loop.sockRecv(-1, 10), { code: 'EBADF' });
  t.close();
  server.close();
  await server.waitClosed();
});

test('loop.sendfile over a transport (a FileHandle), then writes go on', async (tc) => {
  const loop = newLoop(tc);
  const content = crypto.randomBytes(400000);
  const fh = await fs.promises.open(tmpFile(tc, content), 'r');
  tc.after(() => fh.close());
  const chunks = [];
  let size = 0;
  const done = deferred();
  const server = await loop.createServer('127.0.0.1', 0, () => ({
    dataReceived(d) { chunks.push(d); size += d.length; if (size >= 400000 - 10 + 4) done.resolve(); },
  }));
  const t = await loop.createConnection('127.0.0.1', server.port, {});
  const sent = await loop.sendfile(t, fh, 10);
  assert.equal(sent, 400000 - 10);
  t.write('tail');
  await done.promise;
  const got = Buffer.concat(chunks);
  assert.ok(got.subarray(0, sent).equals(content.subarray(10)));
  assert.equal(got.subarray(sent).toString(), 'tail');
  t.close();
  server.close();
  await server.waitClosed();
});
