'use strict';
/**
 * asyncloop for Node: the asyncio event loop (a Go engine behind a C ABI),
 * driven from Node's own event loop through a thin N-API addon.
 *
 *   const { Loop } = require('asyncloop-engine');
 *   const loop = new Loop();
 *   loop.callLater(500, () => console.log('half a second later'));
 *
 * Names mirror asyncio in camelCase; delays and times are milliseconds, as
 * Node's timers (loop.time() is the monotonic clock in ms). The JS thread
 * never blocks: the loop runs whenever its backend fd or its next timer
 * fires in Node's event loop, and it keeps the process alive only while it
 * has live work (ready callbacks, timers, transports, servers, endpoints,
 * subprocesses, fd watchers, pending operations).
 *
 * Errors are Node's: Error objects with .code = 'ECONNREFUSED' and friends
 * (lib/errors.js). An exception thrown by a callback the loop runs (a
 * scheduled callback, a protocol method, a done-callback) is reported like
 * one thrown by a setTimeout callback: process 'uncaughtException', else
 * the process exits.
 *
 * Files: lib/native.js (loading, dispatch, operations), lib/errors.js,
 * lib/loop.js (Loop, handles, the current loop), lib/future.js,
 * lib/transports.js, lib/net.js (connections, servers, datagrams, pipes,
 * sendfile, start_tls), lib/tls.js, lib/process.js, lib/dns.js,
 * lib/sockets.js (sock_*), lib/stream.js (stream.Duplex over a transport).
 */
const abi = require('./abi');
const { native, version, constants } = require('./lib/native');
const { AbortError } = require('./lib/errors');
const {
  Loop, Handle, TimerHandle, getRunningLoop, getEventLoop, setEventLoop, newEventLoop,
} = require('./lib/loop');
const { Future } = require('./lib/future');
const {
  Transport, Server, DatagramTransport, SubprocessTransport, SubprocessPipeTransport,
} = require('./lib/transports');
require('./lib/net');
require('./lib/dns');
require('./lib/process');
const { sockets } = require('./lib/sockets');
const { SecureContext, createSecureContext } = require('./lib/tls');
const { TransportStream, toDuplex } = require('./lib/stream');

/** The static name of a library code: errName(-111) === 'ALOOP_ECONNREFUSED'. */
function errName(code) {
  return native.errName(code);
}

/** The static description of a library code. */
function strerror(code) {
  return native.strerror(code);
}

/** Every ALOOP_E* code by its name (codes.ALOOP_ECONNREFUSED === -111). */
const codes = abi.codes;

// Shorthand names only, so that `import { Loop, version } from` this file
// works too (Node's CommonJS named-export detection); index.mjs is the
// package's ESM entry.
/** The process's live handles of the library (for leak tests). */
function liveHandles() {
  return native.liveHandles();
}

module.exports = {
  Loop,
  Handle,
  TimerHandle,
  Future,
  Transport,
  Server,
  DatagramTransport,
  SubprocessTransport,
  SubprocessPipeTransport,
  TransportStream,
  toDuplex,
  SecureContext,
  createSecureContext,
  AbortError,
  getRunningLoop,
  getEventLoop,
  setEventLoop,
  newEventLoop,
  sockets,
  constants,
  errName,
  strerror,
  codes,
  liveHandles,
  version,
};
