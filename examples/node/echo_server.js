#!/usr/bin/env node
'use strict';
// Usage: node examples/node/echo_server.js [HOST] [PORT]
//
// A TCP echo server on asyncloop. Prints "listening HOST PORT" once ready
// and runs until SIGINT/SIGTERM, then closes and exits by itself.
const path = require('path');
const { Loop } = require(path.join(__dirname, '..', '..', 'bindings', 'node'));

class EchoProtocol {
  connectionMade(transport) { this.transport = transport; }
  dataReceived(data) { this.transport.write(data); }
  eofReceived() { return false; }
}

async function main() {
  const host = process.argv[2] || '127.0.0.1';
  const port = Number(process.argv[3] || 0);
  const loop = new Loop();
  const server = await loop.createServer(host, port, () => new EchoProtocol());
  const { host: h, port: p } = server.sockname;
  console.log(`listening ${h} ${p}`);
  const stop = () => server.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await server.waitClosed();
  process.removeListener('SIGINT', stop);
  process.removeListener('SIGTERM', stop);
}

main().catch((err) => {
  process.stderr.write(`echo_server: ${err.code || 'error'}: ${err.message}\n`);
  process.exit(1);
});
