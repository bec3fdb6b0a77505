'use strict';
// getaddrinfo / getnameinfo without blocking the loop, compared with
// node:dns where they overlap. Only loopback names and numeric addresses.
const test = require('node:test');
const assert = require('node:assert/strict');
const dns = require('dns');
const { asyncloop, newLoop } = require('./_helpers');
const { constants } = asyncloop;

test('getaddrinfo of numeric hosts: one result per socket type, Node families', async (tc) => {
  const loop = newLoop(tc);
  const all = await loop.getaddrinfo('127.0.0.1', 80);
  assert.ok(all.length >= 2, 'every socket type is listed without a type');
  for (const ai of all) {
    assert.equal(ai.address, '127.0.0.1');
    assert.equal(ai.family, 4);
    assert.equal(ai.port, 80);
  }
  const [tcp, ...rest] = await loop.getaddrinfo('127.0.0.1', '8080', { type: 'stream' });
  assert.equal(rest.length, 0);
  assert.equal(tcp.type, constants.SOCK_STREAM);
  assert.equal(tcp.protocol, constants.IPPROTO_TCP);
  assert.equal(tcp.port, 8080);
  const [udp] = await loop.getaddrinfo('::1', 53, { family: 6, type: 'dgram' });
  assert.deepEqual([udp.address, udp.family, udp.type, udp.protocol, udp.port],
                   ['::1', 6, constants.SOCK_DGRAM, constants.IPPROTO_UDP, 53]);
  const [wild] = await loop.getaddrinfo(null, 9000, { family: 4, type: 'stream', flags: constants.AI_PASSIVE });
  assert.equal(wild.address, '0.0.0.0');
  const [loopback] = await loop.getaddrinfo(null, 9000, { family: 4, type: 'stream' });
  assert.equal(loopback.address, '127.0.0.1');
});

test('getaddrinfo of localhost agrees with dns.lookup, and names its canonical name', async (tc) => {
  const loop = newLoop(tc);
  const ours = await loop.getaddrinfo('localhost', 0, { type: 'stream', flags: constants.AI_CANONNAME });
  const theirs = await dns.promises.lookup('localhost', { all: true });
  assert.deepEqual(new Set(ours.map((a) => `${a.family}/${a.address}`)),
                   new Set(theirs.map((a) => `${a.family}/${a.address}`)));
  assert.equal(typeof ours[0].canonname, 'string');
  assert.ok(ours[0].canonname.length > 0);
});

test('getnameinfo of numeric addresses; failures are ENOTFOUND', async (tc) => {
  const loop = newLoop(tc);
  const flags = constants.NI_NUMERICHOST | constants.NI_NUMERICSERV;
  assert.deepEqual(await loop.getnameinfo({ host: '127.0.0.1', port: 80 }, flags), { host: '127.0.0.1', service: '80' });
  assert.deepEqual(await loop.getnameinfo(['::1', 443], flags), { host: '::1', service: '443' });
  const named = await loop.getnameinfo(['127.0.0.1', 22], constants.NI_NUMERICSERV);
  assert.equal(typeof named.host, 'string');
  assert.equal(named.service, '22');
  const err = await loop.getnameinfo({ host: 'localhost', port: 80 }, flags).then(() => null, (e) => e);
  assert.equal(err.code, 'ENOTFOUND');
  assert.equal(err.syscall, 'getnameinfo');
  assert.equal(err.hostname, 'localhost');
});

test('DNS operations take a signal and bad arguments are TypeErrors', async (tc) => {
  const loop = newLoop(tc);
  await assert.rejects(loop.getaddrinfo('localhost', 0, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  await assert.rejects(loop.getaddrinfo('localhost', 0, { type: 'bogus' }), TypeError);
  await assert.rejects(loop.getaddrinfo('localhost', 0, { family: 'IPv5' }), TypeError);
  await assert.rejects(loop.getaddrinfo(42, 0), TypeError);
});
