#!/usr/bin/env node
'use strict';
// The cost of the Node <-> libasyncloop seam, through the public binding.
//
//   call_ns      one call into the library: loop.time() (JS wrapper + N-API
//                + aloop_loop_time), best of 5 runs of 1e6 calls
//   callback_ns  one callback out: N callSoon callbacks run in a single
//                aloop_loop_run(NOWAIT) iteration (C trampoline -> JS
//                dispatch -> the callback), best of 5 runs, per callback
//   wakeup_us    a native thread (started by the addon, the JS thread idle in
//                Node's epoll) calls aloop_call_soon_threadsafe; the time
//                until the callback runs on the JS thread (eventfd -> libuv
//                uv_poll -> run NOWAIT -> JS), median of 200
//
// Prints one JSON line: {"host":"node","call_ns":..,"callback_ns":..,"wakeup_us":..}
// Env: ASYNCLOOP_LIBRARY, ASYNCLOOP_NODE_ADDON as for the binding.
const path = require('path');
const { Loop } = require(path.join(__dirname, '..', 'bindings', 'node'));

function now() {
  return process.hrtime.bigint();
}

function bestOf(runs, fn) {
  let best = Infinity;
  for (let i = 0; i < runs; i++) best = Math.min(best, fn());
  return best;
}

function measureCall(loop) {
  const N = 1000000;
  let sink = 0;
  for (let i = 0; i < 10000; i++) sink += loop.time(); // warm up
  const ns = bestOf(5, () => {
    const t0 = now();
    for (let i = 0; i < N; i++) sink += loop.time();
    return Number(now() - t0) / N;
  });
  if (sink === 0) throw new Error('unreachable');
  return ns;
}

function measureCallback(loop) {
  const N = 100000;
  let count = 0;
  const cb = () => { count++; };
  const once = () => {
    for (let i = 0; i < N; i++) loop.callSoon(cb);
    const t0 = now();
    loop._runOnce();
    const dt = Number(now() - t0);
    if (count !== N) throw new Error(`ran ${count} of ${N} callbacks in one iteration`);
    count = 0;
    return dt / N;
  };
  once(); // warm up
  return bestOf(5, once);
}

async function measureWakeup(loop) {
  const keepAlive = setInterval(() => {}, 1000);
  const samples = [];
  for (let i = 0; i < 210; i++) {
    const ns = await loop._wakeupFromThread(1000);
    if (i >= 10) samples.push(ns / 1000);
  }
  clearInterval(keepAlive);
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

async function main() {
  const loop = new Loop();
  const call = measureCall(loop);
  const callback = measureCallback(loop);
  const wakeup = await measureWakeup(loop);
  loop.close();
  const round = (x, d) => Number(x.toFixed(d));
  console.log(JSON.stringify({
    host: 'node',
    call_ns: round(call, 1),
    callback_ns: round(callback, 1),
    wakeup_us: round(wakeup, 1),
  }));
}

main().catch((err) => {
  process.stderr.write(`seam_node: ${err.stack || err}\n`);
  process.exit(1);
});
