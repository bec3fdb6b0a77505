#!/usr/bin/env node
'use strict';
// Echo servers of the Node benchmark suite, one process per implementation.
//
//   node bench/servers/node_echo_server.js IMPL
//
// IMPL: node-net  (node:net, noDelay, socket.write of every chunk)
//       asyncloop (the asyncloop addon: Loop.createServer with an echo
//                  protocol; ASYNCLOOP_NODE_ADDON / ASYNCLOOP_LIBRARY as the
//                  binding reads them)
// Listens on 127.0.0.1 on a free port, prints "PORT <n>" when ready, and
// exits when its standard input reaches end of file. If the asyncloop
// binding cannot be loaded it prints "MISSING <reason>" and exits 0.
const path = require('path');
const net = require('net');

function onStdinEnd(fn) {
  process.stdin.on('data', () => {});
  process.stdin.on('end', fn);
  process.stdin.on('error', fn);
  process.stdin.resume();
}

function serveNet() {
  const server = net.createServer({ noDelay: true }, (sock) => {
    sock.on('data', (d) => sock.write(d));
    sock.on('error', () => sock.destroy());
  });
  server.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }, () => {
    process.stdout.write(`PORT ${server.address().port}\n`);
  });
  onStdinEnd(() => process.exit(0));
}

async function serveAsyncloop() {
  let Loop;
  try {
    ({ Loop } = require(path.join(__dirname, '..', '..', 'bindings', 'node')));
  } catch (err) {
    process.stdout.write(`MISSING the asyncloop Node binding cannot be loaded (${err.message.split('\n')[0]})\n`);
    process.exit(0);
  }
  class Echo {
    connectionMade(t) { this.t = t; }
    dataReceived(d) { this.t.write(d); }
    eofReceived() { return false; }
  }
  let loop;
  let server;
  try {
    loop = new Loop();
    server = await loop.createServer('127.0.0.1', 0, () => new Echo());
  } catch (err) {
    process.stdout.write(`MISSING the asyncloop Node binding failed (${err.code || ''} ${err.message.split('\n')[0]})\n`);
    process.exit(0);
  }
  process.stdout.write(`PORT ${server.sockname.port}\n`);
  onStdinEnd(() => process.exit(0));
}

const impl = process.argv[2];
if (impl === 'node-net') serveNet();
else if (impl === 'asyncloop') serveAsyncloop();
else {
  process.stderr.write('usage: node_echo_server.js node-net|asyncloop\n');
  process.exit(2);
}
