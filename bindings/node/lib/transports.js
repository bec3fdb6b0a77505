'use strict';
/**
 * The objects the loop calls back: Transport (a stream: TCP, Unix, pipe,
 * with or without TLS), Server, DatagramTransport, SubprocessTransport and
 * the transports of a subprocess's pipes. Each has the protocol object it
 * dispatches to (`_protocol`); the addon wraps each JS object around its
 * library handle.
 */
const net = require('net');
const { native, lib, operation, toAddress, checkOptions } = require('./native');
const { signalNumber } = require('./loop');

const TLS_VERSIONS = { 0x0303: 'TLSv1.2', 0x0304: 'TLSv1.3' };

function isBuffered(p) {
  return p != null && typeof p.getBuffer === 'function' && typeof p.bufferUpdated === 'function';
}

function toBytes(data) {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** Node's family name of a numeric host. */
function familyOf(host) {
  const v = net.isIP(host);
  return v === 4 ? 'IPv4' : v === 6 ? 'IPv6' : undefined;
}

/** Node's address() of an address this binding reports. */
function nodeAddress(a) {
  if (a === null || typeof a === 'string') return a;
  return { address: a.host, family: familyOf(a.host), port: a.port };
}

/**
 * asyncio's set_write_buffer_limits(high, low) arguments: with neither, the
 * defaults (64 KiB / 16 KiB); high alone sets low = high / 4; low alone sets
 * high = 4 * low. high 0 pauses writing on any buffered byte.
 */
function waterMarks(high, low) {
  if (high === undefined) high = low === undefined ? lib.writeBufferHigh : 4 * low;
  if (low === undefined) low = Math.floor(high / 4);
  if (!(high >= low && low >= 0)) {
    throw new RangeError(`high (${high}) must be >= low (${low}) must be >= 0`);
  }
  return [high, low];
}

function protocolCall(o, name, ...args) {
  const p = o._protocol;
  if (p != null && typeof p[name] === 'function') p[name](...args);
}

/** What every object of a loop has: the loop, and Node's ref()/unref(). */
class LoopObject {
  constructor(loop) {
    this._loop = loop;
    this._unref = false;
  }

  getLoop() {
    return this._loop;
  }

  /**
   * Node's unref(): this object alone no longer keeps the process alive (the
   * loop still serves it while anything else keeps the process up). Returns
   * this.
   */
  unref() {
    native.objSetRef(this, false);
    this._unref = true;
    return this;
  }

  /** Node's ref(): undoes unref(). Returns this. */
  ref() {
    native.objSetRef(this, true);
    this._unref = false;
    return this;
  }

  hasRef() {
    return !this._unref;
  }
}

/** What every transport shares: its protocol and the end. */
class BaseTransport extends LoopObject {
  constructor(loop, protocol) {
    super(loop);
    this._protocol = protocol;
    this._lost = false;
  }

  getProtocol() {
    return this._protocol;
  }

  /** Routes the following callbacks to another protocol. */
  setProtocol(protocol) {
    this._protocol = protocol;
  }

  /** asyncio's get_extra_info(name, default). */
  getExtraInfo(name, defaultValue = null) {
    const value = this._extraInfo(name);
    return value === null || value === undefined ? defaultValue : value;
  }

  _extraInfo() {
    return null;
  }

  _connectionLost(err) {
    this._lost = true;
    protocolCall(this, 'connectionLost', err);
  }
}

// ---------------------------------------------------------------------------
// Stream transports
// ---------------------------------------------------------------------------

/**
 * A stream transport (asyncio.Transport): TCP, Unix socket or pipe, with or
 * without TLS. Its protocol is an object with optional methods
 * connectionMade(transport), dataReceived(data: Buffer), eofReceived() ->
 * boolean, connectionLost(err|null), pauseWriting(), resumeWriting(); or a
 * buffered protocol (asyncio.BufferedProtocol): getBuffer(sizehint) ->
 * Uint8Array and bufferUpdated(nbytes) instead of dataReceived.
 */
class Transport extends BaseTransport {
  constructor(loop, protocol) {
    super(loop, protocol);
    this._buffered = isBuffered(protocol);
    this._peername = undefined;
    this._sockname = undefined;
    this._tls = undefined;
    this._secureContext = null;
  }

  /** Writes a Buffer, TypedArray, DataView or string (UTF-8). Never blocks. */
  write(data) {
    native.transportWrite(this, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /** Writes every buffer (or string) of an iterable, in order, in one call. */
  writelines(list) {
    native.transportWritev(this, Array.from(list, toBytes));
  }

  /** Flushes the buffer, then closes; connectionLost(null) follows. */
  close() {
    native.transportClose(this);
  }

  /** Closes at once, dropping buffered data; connectionLost(null) follows. */
  abort() {
    native.transportAbort(this);
  }

  /** Shuts down the write side once the buffer is flushed. */
  writeEof() {
    native.transportWriteEof(this);
  }

  canWriteEof() {
    return native.transportCanWriteEof(this);
  }

  isClosing() {
    return native.transportIsClosing(this);
  }

  pauseReading() {
    native.transportPauseReading(this);
  }

  resumeReading() {
    native.transportResumeReading(this);
  }

  isReading() {
    return native.transportIsReading(this);
  }

  getWriteBufferSize() {
    return native.transportGetWriteBufferSize(this);
  }

  /** asyncio's set_write_buffer_limits(high, low): see waterMarks. */
  setWriteBufferLimits(high, low) {
    native.transportSetWriteBufferLimits(this, ...waterMarks(high, low));
  }

  /** {low, high} in bytes. */
  getWriteBufferLimits() {
    return native.transportGetWriteBufferLimits(this);
  }

  /** Routes the following callbacks to another (plain or buffered) protocol. */
  setProtocol(protocol) {
    const buffered = isBuffered(protocol);
    if (buffered !== this._buffered) native.transportSetProtocol(this, buffered);
    this._buffered = buffered;
    this._protocol = protocol;
  }

  _address(peer) {
    try {
      const a = native.transportAddress(this, peer);
      return toAddress(a.host, a.port);
    } catch {
      return null;
    }
  }

  /** The peer address: {host, port}, a Unix socket's path, or null. */
  get peername() {
    if (this._peername === undefined || this._peername === null) this._peername = this._address(true);
    return this._peername;
  }

  /** The local address: {host, port}, a Unix socket's path, or null. */
  get sockname() {
    if (this._sockname === undefined || this._sockname === null) this._sockname = this._address(false);
    return this._sockname;
  }

  /** Node's socket.address(): {address, family, port}, or a path. */
  address() {
    return nodeAddress(this.sockname);
  }

  get remoteAddress() {
    const a = this.peername;
    return a === null ? undefined : typeof a === 'string' ? a : a.host;
  }

  get remotePort() {
    const a = this.peername;
    return a === null || typeof a === 'string' ? undefined : a.port;
  }

  get remoteFamily() {
    const a = this.peername;
    return a === null || typeof a === 'string' ? undefined : familyOf(a.host);
  }

  get localAddress() {
    const a = this.sockname;
    return a === null ? undefined : typeof a === 'string' ? a : a.host;
  }

  get localPort() {
    const a = this.sockname;
    return a === null || typeof a === 'string' ? undefined : a.port;
  }

  // TLS: the details, once the handshake is done (null without TLS).
  _tlsInfo() {
    if (this._tls === undefined || this._tls === null) {
      this._tls = native.transportTlsInfo(this);
    }
    return this._tls;
  }

  _connectionLost(err) {
    // Keep the TLS details for later (the handle goes stale after this).
    if (this._tls === undefined || this._tls === null) {
      try {
        this._tls = native.transportTlsInfo(this);
      } catch {
        this._tls = null;
      }
    }
    super._connectionLost(err);
  }

  /** True when the transport uses TLS (Node's TLSSocket.encrypted). */
  get encrypted() {
    return this._tlsInfo() !== null;
  }

  /** The negotiated ALPN protocol, false when none (Node's alpnProtocol). */
  get alpnProtocol() {
    const t = this._tlsInfo();
    return t === null || t.alpn === '' ? false : t.alpn;
  }

  /** {name, standardName, version} of the TLS cipher, or null. */
  getCipher() {
    const t = this._tlsInfo();
    if (t === null) return null;
    return { name: t.cipher, standardName: t.cipher, version: TLS_VERSIONS[t.version] };
  }

  /** 'TLSv1.2' / 'TLSv1.3', or null without TLS (Node's getProtocol()). */
  getTlsVersion() {
    const t = this._tlsInfo();
    return t === null ? null : TLS_VERSIONS[t.version];
  }

  /** The peer's certificate as a crypto.X509Certificate, or undefined. */
  getPeerX509Certificate() {
    const t = this._tlsInfo();
    if (t === null || t.peerCertificate === null) return undefined;
    const { X509Certificate } = require('crypto');
    return new X509Certificate(t.peerCertificate);
  }

  /**
   * asyncio's get_extra_info: 'peername', 'sockname' ({host, port} or a
   * path), 'socket' (the fd, owned by the transport); with TLS 'peercert'
   * (a crypto.X509Certificate), 'cipher' ({name, standardName, version}),
   * 'tlsVersion', 'alpnProtocol', 'sslcontext' (the SecureContext).
   */
  _extraInfo(name) {
    switch (name) {
      case 'peername': return this.peername;
      case 'sockname': return this.sockname;
      case 'socket':
      case 'pipe':
        try {
          return native.transportFd(this);
        } catch {
          return null;
        }
      case 'peercert': return this.getPeerX509Certificate();
      case 'cipher': return this.getCipher();
      case 'tlsVersion': return this.getTlsVersion();
      case 'alpnProtocol': return this.alpnProtocol || null;
      case 'sslcontext': return this._secureContext;
      default: return null;
    }
  }
}

/**
 * The transport of a subprocess's stdin, stdout or stderr pipe
 * (SubprocessTransport.getPipeTransport(fd)): stdin takes write, writelines,
 * writeEof, the write buffer functions; stdout/stderr pauseReading and
 * resumeReading; all close, abort and isClosing. Its protocol is the
 * subprocess's.
 */
class SubprocessPipeTransport extends Transport {
  constructor(proc, fd) {
    super(proc._loop, null);
    this._proc = proc;
    this._fd = fd;
  }

  getProtocol() {
    return this._proc._protocol;
  }

  setProtocol() {
    throw new TypeError("a subprocess's pipe transport keeps the subprocess's protocol");
  }

  _extraInfo(name) {
    return name === 'pipe' ? super._extraInfo(name) : null;
  }
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

/** A listening server (asyncio.Server): TCP or Unix, with or without TLS. */
class Server extends LoopObject {
  constructor(loop, protocolFactory, path = null) {
    super(loop);
    this._protocolFactory = protocolFactory;
    this._path = path;
  }

  // A connection was accepted: a Transport with a new protocol, or
  // undefined to refuse it.
  _accept() {
    const protocol = this._protocolFactory();
    if (protocol === null || (typeof protocol !== 'object' && typeof protocol !== 'function')) {
      return undefined;
    }
    return new Transport(this._loop, protocol);
  }

  /** Stops listening; accepted connections stay open. Idempotent. */
  close() {
    native.serverClose(this);
  }

  isServing() {
    return native.serverIsServing(this);
  }

  /** Node's server.listening. */
  get listening() {
    return this.isServing();
  }

  startServing() {
    native.serverStartServing(this);
  }

  /** Starts serving if needed; resolves once the server is closed. */
  serveForever(options) {
    if (!this.isServing()) this.startServing();
    return this.waitClosed(options);
  }

  /**
   * Resolves once the server is closed and its connections are gone.
   * options: {signal, timeout (ms)}.
   */
  waitClosed(options) {
    options = checkOptions(options);
    return operation(options, (c) => native.serverWaitClosed(this, c), 'close');
  }

  /** The listening sockets: [{fd, host, port}] (empty once closed). */
  get sockets() {
    return native.serverSockets(this);
  }

  /** The address of the first listening socket ({host, port} or a path), or null. */
  get sockname() {
    const s = this.sockets;
    return s.length === 0 ? null : toAddress(s[0].host, s[0].port);
  }

  /** The port of the first listening socket, or null. */
  get port() {
    const s = this.sockets;
    return s.length === 0 || s[0].port === 0 ? null : s[0].port;
  }

  /**
   * Node's server.address(): {address, family, port} of the first listening
   * socket, the path of a Unix server, or null once closed.
   */
  address() {
    const a = this.sockname;
    if (a === null) return null;
    return typeof a === 'string' ? (this._path ?? a) : nodeAddress(a);
  }
}

// ---------------------------------------------------------------------------
// Datagram endpoints
// ---------------------------------------------------------------------------

/**
 * A datagram endpoint (asyncio.DatagramTransport): UDP or a Unix datagram
 * socket. Its protocol has optional methods connectionMade(transport),
 * datagramReceived(data: Buffer, addr), errorReceived(err),
 * connectionLost(err|null), pauseWriting(), resumeWriting(); addr is
 * {host, port}, or the sender's path for a Unix socket ('' if unbound).
 */
class DatagramTransport extends BaseTransport {
  /**
   * Sends one datagram (Buffer, TypedArray, DataView or string) to addr:
   * {host, port}, [host, port], a Unix socket path, or nothing for the
   * endpoint's remote address. Never blocks (buffered when the socket is
   * full); send errors go to the protocol's errorReceived.
   */
  sendto(data, addr) {
    let host = null;
    let port = 0;
    if (typeof addr === 'string') {
      host = addr.startsWith('\0') ? `@${addr.slice(1)}` : addr;
    } else if (Array.isArray(addr)) {
      [host, port] = addr;
    } else if (addr !== undefined && addr !== null) {
      ({ host, port } = addr);
    }
    native.datagramSendto(this, toBytes(data), host, port);
  }

  /** Sends what is buffered, then closes; connectionLost(null) follows. */
  close() {
    native.datagramClose(this);
  }

  /** Closes at once, dropping buffered datagrams. */
  abort() {
    native.datagramAbort(this);
  }

  isClosing() {
    return native.datagramIsClosing(this);
  }

  getWriteBufferSize() {
    return native.datagramGetWriteBufferSize(this);
  }

  /** As Transport.setWriteBufferLimits. */
  setWriteBufferLimits(high, low) {
    native.datagramSetWriteBufferLimits(this, ...waterMarks(high, low));
  }

  getWriteBufferLimits() {
    return native.datagramGetWriteBufferLimits(this);
  }

  _address(peer) {
    try {
      const a = native.datagramAddress(this, peer);
      return toAddress(a.host, a.port);
    } catch {
      return null;
    }
  }

  /** The local address ({host, port} or a path), or null. */
  get sockname() {
    return this._address(false);
  }

  /** The connected remote address, or null. */
  get peername() {
    return this._address(true);
  }

  /** Node's socket.address(). */
  address() {
    return nodeAddress(this.sockname);
  }

  _extraInfo(name) {
    switch (name) {
      case 'sockname': return this.sockname;
      case 'peername': return this.peername;
      case 'socket':
        try {
          return native.datagramFd(this);
        } catch {
          return null;
        }
      default: return null;
    }
  }
}

// ---------------------------------------------------------------------------
// Subprocesses
// ---------------------------------------------------------------------------

/**
 * A child process (asyncio.SubprocessTransport). Its protocol has optional
 * methods connectionMade(transport), pipeDataReceived(fd, data),
 * pipeConnectionLost(fd, err|null), processExited(), connectionLost(err),
 * pauseWriting(), resumeWriting().
 */
class SubprocessTransport extends BaseTransport {
  constructor(loop, protocol, spawnargs) {
    super(loop, protocol);
    this.spawnargs = spawnargs;
    this._pid = undefined;
    this._returncode = null;
    this._pipes = new Map(); // fd -> SubprocessPipeTransport | null (closed)
    this._waiters = [];
  }

  /** The child's process id. */
  get pid() {
    if (this._pid === undefined) this._pid = native.subprocessPid(this);
    return this._pid;
  }

  getPid() {
    return this.pid;
  }

  /**
   * The return code once the child exited (asyncio: its exit status, or
   * minus the number of the signal that killed it), null while it runs.
   */
  getReturncode() {
    if (this._returncode === null && !this._lost) this._returncode = native.subprocessReturncode(this);
    return this._returncode;
  }

  /** Node's ChildProcess.exitCode: the exit status, null if killed or running. */
  get exitCode() {
    const rc = this.getReturncode();
    return rc === null || rc < 0 ? null : rc;
  }

  /** Node's ChildProcess.signalCode: 'SIGTERM' etc. if a signal killed it. */
  get signalCode() {
    const rc = this.getReturncode();
    if (rc === null || rc >= 0) return null;
    const os = require('os');
    return Object.keys(os.constants.signals).find((k) => os.constants.signals[k] === -rc) ?? null;
  }

  /**
   * Resolves with the return code once the child exited (asyncio's wait()).
   * A pending wait keeps the process alive, also after close() (whose child
   * no longer counts as the loop's work).
   */
  wait() {
    const rc = this.getReturncode();
    if (rc !== null) return Promise.resolve(rc);
    if (this._waiters.length === 0) native.loopHold(this._loop, 1);
    return new Promise((resolve) => this._waiters.push(resolve));
  }

  /**
   * The transport of the child's fd 0, 1 or 2, or null when that fd is not
   * a pipe or its pipe is closed.
   */
  getPipeTransport(fd) {
    if (fd !== 0 && fd !== 1 && fd !== 2) throw new RangeError('fd must be 0, 1 or 2');
    let t = this._pipes.get(fd);
    if (t === undefined) {
      t = new SubprocessPipeTransport(this, fd);
      if (this._lost || !native.subprocessPipe(this, fd, t)) t = null;
      this._pipes.set(fd, t);
    }
    return t;
  }

  /** Sends a signal (a name such as 'SIGUSR1' or a number); once the
   * subprocess has ended, does nothing (as Node's kill()). */
  sendSignal(sig) {
    const n = signalNumber(sig);
    if (this._lost) return;
    native.subprocessSendSignal(this, n);
  }

  terminate() {
    this.sendSignal('SIGTERM');
  }

  kill() {
    this.sendSignal('SIGKILL');
  }

  /** Closes the pipes and kills the child if it still runs. Idempotent. */
  close() {
    native.subprocessClose(this);
  }

  isClosing() {
    return native.subprocessIsClosing(this);
  }

  _pipeLost(fd) {
    this._pipes.set(fd, null);
  }

  _processExited() {
    this.getReturncode();
    protocolCall(this, 'processExited');
    const waiters = this._waiters;
    this._waiters = [];
    if (waiters.length) native.loopHold(this._loop, -1);
    for (const w of waiters) w(this._returncode);
  }

  _extraInfo(name) {
    return name === 'subprocess' ? this : null;
  }
}

module.exports = {
  BaseTransport, Transport, SubprocessPipeTransport, Server, DatagramTransport,
  SubprocessTransport, isBuffered, toBytes,
};
