'use strict';
// Shared by tests/node/*.test.js. The binding is loaded from the source tree;
// ASYNCLOOP_NODE_ADDON and ASYNCLOOP_LIBRARY point it at the built files.
const path = require('path');
const { spawn } = require('child_process');

const BINDING = path.resolve(__dirname, '..', '..', 'bindings', 'node');
const asyncloop = require(BINDING);

/** Runs `node -e script` (script may require(BINDING)); resolves with
 * {code, signal, stdout, stderr, ms, killed}. The child is killed after
 * timeoutMs. onStdout(line, child) sees each stdout line as it arrives;
 * nodeArgs go before -e. */
function runNode(script, { timeoutMs = 10000, onStdout, nodeArgs = [] } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [...nodeArgs, '-e', script], {
      env: { ...process.env, ASYNCLOOP_BINDING: BINDING },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let pending = '';
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d) => {
      stdout += d;
      pending += d;
      let i;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        if (onStdout) onStdout(line, child);
      }
    });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, killed });
    });
  });
}

/** A Loop cleaned up after test t even when the test fails (every server
 * closed, every transport aborted, then the loop closed), so that a failed
 * assertion cannot leave the test process alive. */
function newLoop(t) {
  const loop = new asyncloop.Loop();
  t.after(async () => {
    if (loop.isClosed()) return;
    loop.setExceptionHandler(() => {}); // close() reports what is still open
    loop._abortAll();
    for (let i = 0; i < 200; i++) {
      try {
        loop.close();
        return;
      } catch (err) {
        if (err.code !== 'EBUSY') throw err;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  return loop;
}

/** A promise with its resolve/reject exposed. */
function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

module.exports = { asyncloop, BINDING, runNode, deferred, newLoop };
