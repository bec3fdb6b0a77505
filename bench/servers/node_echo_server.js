#!/usr/bin/env node
'use strict';
// Echo servers of the Node benchmark suite, one process per implementation.
//
//   node bench/servers/node_echo_server.js IMPL [MODE] [--cert PEM --key PEM]
//
// IMPL: node-net  (Node's own modules: node:net, node:dgram, node:tls)
//       asyncloop (the asyncloop addon; ASYNCLOOP_NODE_ADDON /
//                  ASYNCLOOP_LIBRARY as the binding reads them)
// MODE: tcp  (default) a stream echo: every chunk read is written back
//            (node:net with noDelay, socket.write; asyncloop: createServer
//            with a protocol whose dataReceived calls transport.write)
//       udp  a datagram echo: every datagram is sent back to its sender
//            (node:dgram socket.send; asyncloop: createDatagramEndpoint,
//            datagramReceived calls transport.sendto)
//       tls  the tcp echo over TLS with --cert/--key (node:tls createServer;
//            asyncloop: createServer with { tls: { cert, key } })
// Listens on 127.0.0.1 on a free port, prints "PORT <n>" when ready, and
// exits when its standard input reaches end of file. If the asyncloop
// binding cannot be loaded it prints "MISSING <reason>" and exits 0.
const fs = require('fs');
const path = require('path');

function onStdinEnd(fn) {
  process.stdin.on('data', () => {});
  process.stdin.on('end', fn);
  process.stdin.on('error', fn);
  process.stdin.resume();
}

function ready(port) {
  process.stdout.write(`PORT ${port}\n`);
  onStdinEnd(() => process.exit(0));
}

function streamEcho(sock) {
  sock.on('data', (d) => sock.write(d));
  sock.on('error', () => sock.destroy());
}

function serveNode(mode, creds) {
  if (mode === 'udp') {
    const sock = require('dgram').createSocket('udp4');
    sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
    sock.on('error', () => {});
    sock.bind(0, '127.0.0.1', () => ready(sock.address().port));
    return;
  }
  const server = mode === 'tls'
    ? require('tls').createServer({ ...creds, noDelay: true }, streamEcho)
    : require('net').createServer({ noDelay: true }, streamEcho);
  server.on('tlsClientError', () => {});
  server.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }, () => ready(server.address().port));
}

class Echo {
  connectionMade(t) { this.t = t; }
  dataReceived(d) { this.t.write(d); }
  eofReceived() { return false; }
}

class DatagramEcho {
  connectionMade(t) { this.t = t; }
  datagramReceived(d, addr) { this.t.sendto(d, addr); }
}

async function serveAsyncloop(mode, creds) {
  let Loop;
  try {
    ({ Loop } = require(path.join(__dirname, '..', '..', 'bindings', 'node')));
  } catch (err) {
    process.stdout.write(`MISSING the asyncloop Node binding cannot be loaded (${err.message.split('\n')[0]})\n`);
    process.exit(0);
  }
  let port;
  try {
    const loop = new Loop();
    if (mode === 'udp') {
      const ep = await loop.createDatagramEndpoint(new DatagramEcho(),
        { localAddr: { host: '127.0.0.1', port: 0 } });
      port = ep.sockname.port;
    } else {
      const server = await loop.createServer('127.0.0.1', 0, () => new Echo(),
        { backlog: 1024, tls: mode === 'tls' ? creds : undefined });
      port = server.sockname.port;
    }
  } catch (err) {
    process.stdout.write(`MISSING the asyncloop Node binding failed (${err.code || ''} ${err.message.split('\n')[0]})\n`);
    process.exit(0);
  }
  ready(port);
}

const args = process.argv.slice(2);
const impl = args[0];
const mode = args[1] && !args[1].startsWith('--') ? args[1] : 'tcp';
const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
let creds;
if (mode === 'tls') {
  if (!opt('--cert') || !opt('--key')) {
    process.stderr.write('tls needs --cert PEM --key PEM\n');
    process.exit(2);
  }
  creds = { cert: fs.readFileSync(opt('--cert')), key: fs.readFileSync(opt('--key')) };
}
if (!['tcp', 'udp', 'tls'].includes(mode) || !['node-net', 'asyncloop'].includes(impl)) {
  process.stderr.write('usage: node_echo_server.js node-net|asyncloop [tcp|udp|tls] [--cert PEM --key PEM]\n');
  process.exit(2);
}
if (impl === 'node-net') serveNode(mode, creds);
else serveAsyncloop(mode, creds);
