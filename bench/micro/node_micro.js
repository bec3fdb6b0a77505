#!/usr/bin/env node
'use strict';
// The in-process workloads of the Node benchmark suite, one fresh process
// per measurement:
//
//   node bench/micro/node_micro.js IMPL WORKLOAD
//
// IMPL: node-net (Node's own modules) | asyncloop (the addon)
// WORKLOAD:
//   spawn_true  200 sequential spawns of /bin/true, each awaited until it
//               exited (as the Python suite's spawn_true): node:child_process
//               spawn('/bin/true', [], { stdio: 'inherit' }) and its 'exit'
//               event; asyncloop: loop.subprocessExec(protocol, '/bin/true',
//               [], { stdio: 'inherit' }) and transport.wait(). The exit code
//               is checked. No warm-up pass (as in the Python suite).
//
// Prints one JSON line: {"value": <operations per second>, "unit": ...,
// "n": ..., "seconds": ...}, or {"missing": "<reason>"} when the asyncloop
// binding cannot be loaded.
const path = require('path');

const N_SPAWN = 200;

function spawnNode(n) {
  const { spawn } = require('child_process');
  return new Promise((resolve, reject) => {
    let left = n;
    const t0 = process.hrtime.bigint();
    const next = () => {
      const child = spawn('/bin/true', [], { stdio: 'inherit' });
      child.on('error', reject);
      child.on('exit', (code) => {
        if (code !== 0) return reject(new Error(`/bin/true exited with ${code}`));
        if (--left === 0) return resolve(Number(process.hrtime.bigint() - t0) / 1e9);
        next();
      });
    };
    next();
  });
}

async function spawnAsyncloop(n, loop) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const proc = await loop.subprocessExec({}, '/bin/true', [], { stdio: 'inherit' });
    const rc = await proc.wait();
    if (rc !== 0) throw new Error(`/bin/true exited with ${rc}`);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const WORKLOADS = {
  spawn_true: { n: N_SPAWN, unit: 'spawns/s', node: spawnNode, asyncloop: spawnAsyncloop },
};

async function main() {
  const [impl, name] = process.argv.slice(2);
  const w = WORKLOADS[name];
  if (!w || !['node-net', 'asyncloop'].includes(impl)) {
    process.stderr.write(`usage: node_micro.js node-net|asyncloop ${Object.keys(WORKLOADS).join('|')}\n`);
    process.exit(2);
  }
  let seconds;
  if (impl === 'node-net') {
    seconds = await w.node(w.n);
  } else {
    let Loop;
    try {
      ({ Loop } = require(path.join(__dirname, '..', '..', 'bindings', 'node')));
    } catch (err) {
      process.stdout.write(JSON.stringify({ missing: `the asyncloop Node binding cannot be loaded (${err.message.split('\n')[0]})` }) + '\n');
      return;
    }
    seconds = await w.asyncloop(w.n, new Loop());
  }
  process.stdout.write(JSON.stringify({ value: w.n / seconds, unit: w.unit, n: w.n, seconds }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
