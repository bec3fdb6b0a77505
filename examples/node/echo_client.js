#!/usr/bin/env node
'use strict';
// Usage: node examples/node/echo_client.js HOST PORT
//
// Connects to an echo server with asyncloop, sends 1 MiB in 64 chunks of
// 16 KiB (each chunk only once the previous one came back complete),
// verifies every byte and prints
//   Node    1048576 bytes echoed, median round trip <x> us
// Exits 0 only if every byte matched.
const path = require('path');
const crypto = require('crypto');
const { Loop } = require(path.join(__dirname, '..', '..', 'bindings', 'node'));

const CHUNK = 16 * 1024;
const COUNT = 64;
const TIMEOUT_MS = 30000;

function fail(message) {
  process.stderr.write(`echo_client: ${message}\n`);
  process.exit(1);
}

async function main() {
  const [host, portArg] = process.argv.slice(2);
  const port = Number(portArg);
  if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) {
    fail('usage: echo_client.js HOST PORT');
  }
  const payload = crypto.randomBytes(CHUNK * COUNT);
  const loop = new Loop();

  let received = [];
  let receivedBytes = 0;
  let onChunk = null; // resolves when the current chunk is complete
  let onLost = null;
  const protocol = {
    dataReceived(data) {
      received.push(data);
      receivedBytes += data.length;
      if (receivedBytes >= CHUNK && onChunk) onChunk();
    },
    eofReceived() { return false; },
    connectionLost(err) {
      if (onLost) onLost(err || new Error('connection closed by the server'));
    },
  };

  const transport = await loop.createConnection(host, port, protocol);
  const lost = new Promise((_, reject) => { onLost = reject; });
  const watchdog = setTimeout(() => fail('timed out'), TIMEOUT_MS);

  const rtts = [];
  let ok = true;
  for (let i = 0; i < COUNT; i++) {
    const chunk = payload.subarray(i * CHUNK, (i + 1) * CHUNK);
    const complete = new Promise((resolve) => { onChunk = resolve; });
    const t0 = process.hrtime.bigint();
    transport.write(chunk);
    await Promise.race([complete, lost]);
    rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
    onChunk = null;
    const back = Buffer.concat(received);
    if (back.length !== CHUNK || !back.equals(chunk)) ok = false;
    received = [];
    receivedBytes = 0;
  }
  clearTimeout(watchdog);
  onLost = null;
  transport.close();

  rtts.sort((a, b) => a - b);
  const mid = rtts.length >> 1;
  const median = rtts.length % 2 ? rtts[mid] : (rtts[mid - 1] + rtts[mid]) / 2;
  if (!ok) fail('the echoed bytes differ from the bytes sent');
  console.log(`${'Node'.padEnd(8)}${payload.length} bytes echoed, median round trip ${median.toFixed(1)} us`);
}

main().catch((err) => fail(`${err.code || 'error'}: ${err.message}`));
