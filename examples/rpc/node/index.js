'use strict';
/**
 * The JS face of libaloop_rpc (examples/rpc) on asyncloop's Node Loop: the
 * addon aloop_rpc.node (built next to libaloop_rpc.so) turns BigInt
 * pointers into calls of the C library; futures come back through
 * Loop.wrapFuture, so every call is a Promise settled on the JS thread.
 *
 * Require asyncloop first: its addon loads libasyncloop, and the RPC
 * library's dependency on libasyncloop.so.0 then resolves to that same copy
 * (one Go runtime per process).
 *
 *   const rpc = require('.../examples/rpc/node')(loop)
 *   const server = await rpc.startServer('127.0.0.1', 0)
 *   const client = await rpc.connect('127.0.0.1', server.port)
 *   const reply = await client.call(rpc.ECHO, Buffer.from('hi'))
 */
const path = require('path');

function addonPath() {
  if (process.env.ALOOP_RPC_NODE_ADDON) return process.env.ALOOP_RPC_NODE_ADDON;
  if (process.env.ALOOP_RPC_LIBRARY) {
    return path.join(path.dirname(process.env.ALOOP_RPC_LIBRARY), 'aloop_rpc.node');
  }
  return path.resolve(__dirname, '..', '..', '..', 'build', 'examples', 'aloop_rpc.node');
}

let native = null;
function load() {
  if (native === null) native = require(addonPath());
  return native;
}

const METHODS = { ECHO: 1, REVERSE: 2, SLEEP: 3, FAIL: 4, HOST: 5 };

class RpcServer {
  constructor(rpc, h) {
    this._rpc = rpc;
    this._h = h;
    this.port = native.serverPort(h);
  }

  /** Requests answered so far. */
  get requests() { return native.serverRequests(this._h); }

  /** The next RPC_HOST request: {data, respond(ok, Buffer)}. */
  async recv(options) {
    const reqH = await this._rpc.loop.wrapFuture(native.serverRecv(this._h),
      { ...options, release: (r) => native.requestRespond(r, false, Buffer.from('dropped')) });
    const data = native.requestData(reqH);
    let answered = false;
    return {
      data,
      respond: (ok, buf) => {
        if (answered) throw new Error('already answered');
        answered = true;
        native.requestRespond(reqH, !!ok, buf);
        this._rpc.loop.wakeup();
      },
    };
  }

  close() {
    native.serverClose(this._h);
    this._rpc.loop.wakeup();
  }
}

class RpcClient {
  constructor(rpc, h) {
    this._rpc = rpc;
    this._h = h;
  }

  /** Resolves to the reply's bytes (a Buffer); error replies reject (EIO). */
  async call(method, data, options) {
    const reply = await this._rpc.loop.wrapFuture(native.call(this._h, method, data),
      { ...options, release: native.replyFree });
    return native.replyTake(reply);
  }

  /** Sends bytes as they are (tests: malformed frames). */
  sendRaw(buf) {
    native.clientSendRaw(this._h, buf);
  }

  /** The library-driven benchmark (rpc_client_bench). */
  bench(count, inflight, size) {
    return this._rpc.loop.wrapFuture(native.clientBench(this._h, count, inflight, size));
  }

  close() {
    native.clientClose(this._h);
    this._rpc.loop.wakeup();
  }
}

class Rpc {
  constructor(loop) {
    this.loop = loop;
    load();
    Object.assign(this, METHODS);
  }

  get native() { return native; }

  async startServer(host, port) {
    const h = await this.loop.wrapFuture(native.serverStart(this.loop.handle, host, port),
      { release: native.serverClose });
    return new RpcServer(this, h);
  }

  async connect(host, port) {
    const h = await this.loop.wrapFuture(native.connect(this.loop.handle, host, port),
      { release: native.clientClose });
    return new RpcClient(this, h);
  }
}

module.exports = (loop) => new Rpc(loop);
module.exports.METHODS = METHODS;
module.exports.load = load;
