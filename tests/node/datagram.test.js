'use strict';
// Datagram endpoints: UDP (IPv4, IPv6) and Unix datagram sockets, over real
// loopback sockets; interop with node:dgram.
const test = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('dgram');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { asyncloop, deferred, newLoop } = require('./_helpers');
const { DatagramTransport, sockets } = asyncloop;

/** A datagram protocol that queues what it receives. */
function inbox() {
  const items = [];
  const waiters = [];
  const lost = deferred();
  const errors = [];
  return {
    errors,
    lost: lost.promise,
    next() {
      if (items.length) return Promise.resolve(items.shift());
      return new Promise((r) => waiters.push(r));
    },
    connectionMade(t) { this.transport = t; },
    datagramReceived(data, addr) {
      assert.ok(Buffer.isBuffer(data));
      const item = { data, addr };
      if (waiters.length) waiters.shift()(item);
      else items.push(item);
    },
    errorReceived(err) {
      errors.push(err);
      if (waiters.length) waiters.shift()({ error: err });
      else items.push({ error: err });
    },
    connectionLost(err) { lost.resolve(err); },
  };
}

test('UDP: an echo between two endpoints, addresses as {host, port}', async (tc) => {
  const loop = newLoop(tc);
  const serverLost = deferred();
  const server = await loop.createDatagramEndpoint(() => ({
    connectionMade(t) { this.t = t; },
    connectionLost: serverLost.resolve,
    datagramReceived(data, addr) { this.t.sendto(Buffer.concat([Buffer.from('echo:'), data]), addr); },
  }), { localAddr: { host: '127.0.0.1', port: 0 } });
  assert.ok(server instanceof DatagramTransport);
  const { port } = server.sockname;
  assert.ok(port > 0);
  assert.deepEqual(server.address(), { address: '127.0.0.1', family: 'IPv4', port });
  assert.equal(server.peername, null);

  const c = inbox();
  const client = await loop.createDatagramEndpoint(c, { remoteAddr: { host: '127.0.0.1', port } });
  assert.equal(c.transport, client, 'connectionMade ran before the promise resolved');
  assert.deepEqual(client.peername, { host: '127.0.0.1', port });
  for (const msg of ['one', 'two', '', 'three']) client.sendto(msg);
  for (const msg of ['one', 'two', '', 'three']) {
    const { data, addr } = await c.next();
    assert.equal(data.toString(), `echo:${msg}`);
    assert.deepEqual(addr, { host: '127.0.0.1', port });
  }
  // An explicit address other than the connected one is refused.
  assert.throws(() => client.sendto('x', { host: '127.0.0.2', port: 9 }), { code: 'EINVAL' });
  assert.equal(typeof client.getExtraInfo('socket'), 'number');
  assert.equal(client.getWriteBufferSize(), 0);
  client.close();
  assert.equal(client.isClosing(), true);
  assert.equal(await c.lost, null);
  assert.throws(() => client.sendto('late'), { code: 'ERR_ASYNCLOOP_CLOSED' });
  server.abort();
  assert.equal(await serverLost.promise, null);
  loop.close();
});

test('UDP interop with node:dgram, both ways; sendto takes {host, port} and [host, port]', async (tc) => {
  const loop = newLoop(tc);
  const node = dgram.createSocket('udp4');
  tc.after(() => node.close());
  await new Promise((r) => node.bind(0, '127.0.0.1', r));
  const nodePort = node.address().port;
  const c = inbox();
  const ep = await loop.createDatagramEndpoint(c, { localAddr: { host: '127.0.0.1', port: 0 } });
  const got = new Promise((resolve) => node.once('message', (msg, rinfo) => resolve([msg.toString(), rinfo])));
  ep.sendto(Buffer.from('to node'), { host: '127.0.0.1', port: nodePort });
  const [msg, rinfo] = await got;
  assert.equal(msg, 'to node');
  assert.equal(rinfo.port, ep.sockname.port);
  node.send('from node', ep.sockname.port, '127.0.0.1');
  const item = await c.next();
  assert.equal(item.data.toString(), 'from node');
  assert.deepEqual(item.addr, { host: '127.0.0.1', port: nodePort });
  const got2 = new Promise((resolve) => node.once('message', (m) => resolve(m.toString())));
  ep.sendto(new Uint8Array([104, 105]), ['127.0.0.1', nodePort]);
  assert.equal(await got2, 'hi');
  ep.close();
  await c.lost;
});

test('UDP over IPv6 loopback', async (tc) => {
  const loop = newLoop(tc);
  let ep;
  try {
    ep = await loop.createDatagramEndpoint(inbox(), { localAddr: { host: '::1', port: 0 } });
  } catch (e) {
    tc.skip(`no IPv6 loopback: ${e.code}`);
    return;
  }
  const c = inbox();
  const client = await loop.createDatagramEndpoint(c, { family: 6, remoteAddr: { host: '::1', port: ep.sockname.port } });
  const p = ep.getProtocol();
  client.sendto('v6');
  const item = await p.next();
  assert.equal(item.data.toString(), 'v6');
  assert.equal(item.addr.host, '::1');
  assert.equal(ep.address().family, 'IPv6');
  client.abort();
  ep.abort();
});

test('errorReceived: a connected UDP socket learns ECONNREFUSED; the endpoint stays open', async (tc) => {
  const loop = newLoop(tc);
  // A port nobody listens on: bind one, note it, close it.
  const probe = dgram.createSocket('udp4');
  await new Promise((r) => probe.bind(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const c = inbox();
  const client = await loop.createDatagramEndpoint(c, { remoteAddr: { host: '127.0.0.1', port } });
  client.sendto('anyone?');
  client.sendto('anyone??');
  const item = await c.next();
  assert.ok(item.error instanceof Error);
  assert.equal(item.error.code, 'ECONNREFUSED');
  assert.equal(client.isClosing(), false);
  client.close();
  await c.lost;
});

test('Unix datagram sockets: paths as addresses, unbound senders as \'\'', async (tc) => {
  const loop = newLoop(tc);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aloop-dg-'));
  tc.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const a = path.join(dir, 'a.sock');
  const b = path.join(dir, 'b.sock');
  const ca = inbox();
  const cb = inbox();
  const ea = await loop.createDatagramEndpoint(ca, { localAddr: a });
  const eb = await loop.createDatagramEndpoint(cb, { localAddr: b, remoteAddr: a });
  assert.equal(ea.sockname, a);
  assert.equal(eb.peername, a);
  eb.sendto('from b');
  const item = await ca.next();
  assert.equal(item.data.toString(), 'from b');
  assert.equal(item.addr, b);
  ea.sendto('to b', b);
  assert.equal((await cb.next()).data.toString(), 'to b');
  // An unbound sender (a plain socket) shows as ''.
  const fd = sockets.create('unix', 'dgram');
  tc.after(() => sockets.close(fd));
  await loop.sockSendto(fd, 'anon', a);
  const anon = await ca.next();
  assert.equal(anon.data.toString(), 'anon');
  assert.equal(anon.addr, '');
  // The abstract namespace.
  const name = `@aloop-dg-${process.pid}`;
  const cc = inbox();
  const ec = await loop.createDatagramEndpoint(cc, { localAddr: name });
  ea.sendto('abstract', name);
  assert.equal((await cc.next()).data.toString(), 'abstract');
  for (const e of [ea, eb, ec]) e.close();
  await Promise.all([ca.lost, cb.lost, cc.lost]);
});

test('an endpoint on an existing datagram socket (sock), and family without addresses', async (tc) => {
  const loop = newLoop(tc);
  const fd = sockets.create(4, 'dgram');
  sockets.bind(fd, { host: '127.0.0.1', port: 0 });
  const { port } = sockets.name(fd);
  const c = inbox();
  const ep = await loop.createDatagramEndpoint(c, { sock: fd });
  assert.equal(ep.sockname.port, port);
  assert.equal(ep.getExtraInfo('socket'), fd);
  const sender = await loop.createDatagramEndpoint(inbox(), { family: 'IPv4' });
  sender.sendto('via sock', { host: '127.0.0.1', port });
  assert.equal((await c.next()).data.toString(), 'via sock');
  // Bad options are refused before anything starts.
  await assert.rejects(loop.createDatagramEndpoint(inbox(), {}), (e) => e.code === 'EINVAL');
  ep.close();
  sender.close();
  await c.lost;
});

test('the write buffer and its limits; flow control callbacks exist', async (tc) => {
  const loop = newLoop(tc);
  const ep = await loop.createDatagramEndpoint(inbox(), { localAddr: { host: '127.0.0.1', port: 0 } });
  assert.deepEqual(ep.getWriteBufferLimits(), { high: 65536, low: 16384 });
  ep.setWriteBufferLimits(1000);
  assert.deepEqual(ep.getWriteBufferLimits(), { high: 1000, low: 250 });
  assert.throws(() => ep.setWriteBufferLimits(1, 2), RangeError);
  ep.abort();
  await ep.getProtocol().lost;
});
