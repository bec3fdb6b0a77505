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
const loop = require('./lib/loop');
const { Future } = require('./lib/future');
const transports = require('./lib/transports');
require('./lib/net');
require('./lib/dns');
require('./lib/process');
const { sockets } = require('./lib/sockets');
const { SecureContext, createSecureContext } = require('./lib/tls');

module.exports = {
  Loop: loop.Loop,
  Handle: loop.Handle,
  TimerHandle: loop.TimerHandle,
  Future,
  Transport: transports.Transport,
  Server: transports.Server,
  DatagramTransport: transports.DatagramTransport,
  SubprocessTransport: transports.SubprocessTransport,
  SubprocessPipeTransport: transports.SubprocessPipeTransport,
  SecureContext,
  createSecureContext,
  AbortError,
  getRunningLoop: loop.getRunningLoop,
  getEventLoop: loop.getEventLoop,
  setEventLoop: loop.setEventLoop,
  newEventLoop: loop.newEventLoop,
  sockets,
  constants,
  errName: (code) => native.errName(code),
  strerror: (code) => native.strerror(code),
  codes: abi.codes,
  version,
};
