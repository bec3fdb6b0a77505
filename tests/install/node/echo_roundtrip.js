'use strict';
// The install tests' Node consumer: an echo round trip over loopback through
// the installed asyncloop-engine package (require'd by its name from the
// folder it is installed in). Prints "echo ok VERSION LIBRARY ADDON".
const asyncloop = require('asyncloop-engine');

const MESSAGE = Buffer.from('hello through an installed asyncloop-engine');

async function main() {
  const loop = new asyncloop.Loop();
  const server = await loop.createServer('127.0.0.1', 0, () => ({
    connectionMade(t) { this.t = t; },
    dataReceived(data) { this.t.write(data); },
  }));
  const chunks = [];
  let done;
  const finished = new Promise((resolve, reject) => {
    done = { resolve, reject };
  });
  const transport = await loop.createConnection('127.0.0.1', server.port, {
    dataReceived(data) {
      chunks.push(Buffer.from(data));
      if (Buffer.concat(chunks).length >= MESSAGE.length) done.resolve();
    },
    connectionLost(err) { if (err) done.reject(err); },
  });
  const watchdog = setTimeout(() => done.reject(new Error('timed out')), 20000);
  transport.write(MESSAGE);
  await finished;
  clearTimeout(watchdog);
  transport.close();
  server.close();
  if (!Buffer.concat(chunks).equals(MESSAGE)) throw new Error('the echoed bytes differ');
  const v = asyncloop.version;
  console.log(`echo ok ${v.string} ${v.library} ${v.addon}`);
}

main().catch((err) => {
  console.error(`echo_roundtrip: ${err.code || 'error'}: ${err.message}`);
  process.exit(1);
});
