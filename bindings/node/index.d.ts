// Type definitions for the asyncloop Node binding (bindings/node/index.js).
// Delays and times are milliseconds, as Node's timers: Loop.time() is the
// loop's monotonic clock (CLOCK_MONOTONIC, the clock of process.hrtime) in ms.
// Checked with `tsc --strict` against the README's examples (CTest node-types).

/// <reference types="node" />

import type { Duplex, DuplexOptions } from 'stream';
import type { X509Certificate } from 'crypto';

/**
 * An error from the library, in Node's idiom: `code` is Node's
 * ('ECONNREFUSED', 'ENOTFOUND', 'ERR_TLS_CERT_ALTNAME_INVALID', or
 * 'ERR_ASYNCLOOP_*' for the library's own conditions), `errno` the negative
 * code (-111), and a failed system call adds syscall, address/port or path,
 * with Node's message ('connect ECONNREFUSED 127.0.0.1:80').
 */
export interface AsyncloopError extends Error {
  code: string;
  /** The negative ALOOP_E* code (equal to -errno where one exists). */
  errno: number;
  /** The library's name of the code: 'ALOOP_ECONNREFUSED'. */
  aloopCode: string;
  syscall?: string;
  address?: string;
  port?: number;
  path?: string;
  hostname?: string;
  /** The library's detailed message, when it says more than the code. */
  detail?: string;
}

/** Node's AbortError: name 'AbortError', code 'ABORT_ERR', cause the signal's reason. */
export class AbortError extends Error {
  constructor(message?: string, options?: { cause?: unknown });
  readonly code: 'ABORT_ERR';
}

/** An IP address and port. */
export interface Address {
  host: string;
  port: number;
}

/** An address as reported: {host, port}, or a Unix socket's path ('@name' in the abstract namespace, '' unnamed). */
export type SocketAddress = Address | string;

/** An address given to the binding: {host, port}, [host, port], or a Unix path ('@name' or '\0name' abstract). */
export type AddressLike = Address | [string, number] | string;

/** Node's address(): {address, family, port}, or a Unix socket's path. */
export interface NodeAddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6' | undefined;
  port: number;
}

/** Options every Promise-returning operation takes. */
export interface OperationOptions {
  /** Cancels the operation: it rejects with an AbortError. */
  signal?: AbortSignal;
  /** Milliseconds; then the operation is cancelled and rejects with code 'ETIMEDOUT'. */
  timeout?: number;
}

/** A scheduled callback (asyncio.Handle). */
export class Handle {
  /** Handles come from Loop.callSoon and friends. */
  protected constructor();
  /** Cancels the callback; a no-op if it already ran or was cancelled. */
  cancel(): void;
  cancelled(): boolean;
}

/** A timer (asyncio.TimerHandle), with Node's Timeout.ref()/unref(). */
export class TimerHandle extends Handle implements Refable {
  protected constructor();
  /** The deadline in loop time (milliseconds). */
  when(): number;
  /** This timer alone no longer keeps the process alive (it still runs if other work does until its deadline). Returns this. */
  unref(): this;
  /** Undoes unref(). Returns this. */
  ref(): this;
  hasRef(): boolean;
}

/**
 * asyncio.Future on an asyncloop loop. Awaitable; done-callbacks run on the
 * loop, never synchronously.
 */
export class Future<T = unknown> implements PromiseLike<T> {
  private constructor();
  getLoop(): Loop;
  done(): boolean;
  cancelled(): boolean;
  /** True if the future was cancelled now, false if it was already done. */
  cancel(message?: string): boolean;
  /** Throws ERR_INVALID_STATE if already done. */
  setResult(value: T): void;
  /** Throws ERR_INVALID_STATE if already done. */
  setException(exception: unknown): void;
  /** The result; throws the exception, ECANCELED, or ERR_INVALID_STATE if not done. */
  result(): T;
  /** The exception or null; throws ECANCELED, or ERR_INVALID_STATE if not done. */
  exception(): unknown;
  addDoneCallback(fn: (future: this) => void): void;
  /** Removes every registration of fn that has not run; returns how many. */
  removeDoneCallback(fn: (future: this) => void): number;
  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2>;
}

// ---------------------------------------------------------------------------
// Protocols
// ---------------------------------------------------------------------------

/** What every protocol may have. Methods are called with `this` bound to the protocol. */
export interface BaseProtocol<T> {
  connectionMade?(transport: T): void;
  /** null after a clean close; the last call for a transport. */
  connectionLost?(err: AsyncloopError | null): void;
  pauseWriting?(): void;
  resumeWriting?(): void;
}

/** A stream protocol (asyncio.Protocol); every method is optional. */
export interface Protocol extends BaseProtocol<Transport> {
  /** data is a fresh Buffer the protocol may keep. */
  dataReceived?(data: Buffer): void;
  /** Return true to keep the transport half-open (it may still write). */
  eofReceived?(): boolean | void;
}

/** asyncio.BufferedProtocol: the library reads straight into getBuffer()'s memory. */
export interface BufferedProtocol extends BaseProtocol<Transport> {
  getBuffer(sizehint: number): Uint8Array;
  bufferUpdated(nbytes: number): void;
  eofReceived?(): boolean | void;
}

export type StreamProtocol = Protocol | BufferedProtocol;

/** asyncio.DatagramProtocol. */
export interface DatagramProtocol extends BaseProtocol<DatagramTransport> {
  /** addr: {host, port}, or the sender's path for a Unix socket ('' if unbound). */
  datagramReceived?(data: Buffer, addr: SocketAddress): void;
  /** A send or receive failed (e.g. ECONNREFUSED); the endpoint stays open. */
  errorReceived?(err: AsyncloopError): void;
}

/** asyncio.SubprocessProtocol. */
export interface SubprocessProtocol extends BaseProtocol<SubprocessTransport> {
  pipeDataReceived?(fd: 1 | 2, data: Buffer): void;
  pipeConnectionLost?(fd: 0 | 1 | 2, err: AsyncloopError | null): void;
  processExited?(): void;
}

// ---------------------------------------------------------------------------
// Transports
// ---------------------------------------------------------------------------

/** The TLS cipher of a transport. */
export interface CipherInfo {
  name: string;
  standardName: string;
  version: 'TLSv1.2' | 'TLSv1.3';
}

/** Node's ref()/unref(), which every transport, server, endpoint and subprocess has. */
export interface Refable {
  /** This object alone no longer keeps the process alive. Returns this. */
  unref(): this;
  /** Undoes unref(). Returns this. */
  ref(): this;
  hasRef(): boolean;
}

/** A stream transport (asyncio.Transport): TCP, Unix socket or pipe, with or without TLS. */
export class Transport implements Refable {
  protected constructor();
  getLoop(): Loop;
  unref(): this;
  ref(): this;
  hasRef(): boolean;
  /** Writes bytes (a string is sent as UTF-8). Never blocks; buffers what the socket does not take. */
  write(data: string | ArrayBufferView): void;
  /** Writes every item, in order, in one call (asyncio's writelines). */
  writelines(list: Iterable<string | ArrayBufferView>): void;
  /** Flushes the buffer, then closes; connectionLost(null) follows. Idempotent. */
  close(): void;
  /** Closes at once, dropping buffered data; connectionLost(null) follows. */
  abort(): void;
  /** Shuts down the write side once the buffer is flushed. */
  writeEof(): void;
  canWriteEof(): boolean;
  isClosing(): boolean;
  pauseReading(): void;
  resumeReading(): void;
  isReading(): boolean;
  getWriteBufferSize(): number;
  /**
   * asyncio's set_write_buffer_limits: no arguments restores the defaults
   * (64 KiB / 16 KiB); high alone sets low = high / 4; low alone sets high = 4 * low.
   */
  setWriteBufferLimits(high?: number, low?: number): void;
  getWriteBufferLimits(): { low: number; high: number };
  getProtocol(): StreamProtocol | null;
  /** Routes the following callbacks to another (plain or buffered) protocol. */
  setProtocol(protocol: StreamProtocol): void;
  /** The peer address, or null when unknown. */
  readonly peername: SocketAddress | null;
  /** The local address, or null when unknown. */
  readonly sockname: SocketAddress | null;
  /** Node's socket.address(). */
  address(): NodeAddressInfo | string | null;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: 'IPv4' | 'IPv6' | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** True when the transport uses TLS. */
  readonly encrypted: boolean;
  /** The negotiated ALPN protocol, false when none. */
  readonly alpnProtocol: string | false;
  getCipher(): CipherInfo | null;
  /** 'TLSv1.2' / 'TLSv1.3', or null without TLS. */
  getTlsVersion(): 'TLSv1.2' | 'TLSv1.3' | null;
  getPeerX509Certificate(): X509Certificate | undefined;
  /**
   * asyncio's get_extra_info: 'peername', 'sockname', 'socket' / 'pipe' (the
   * fd), 'peercert', 'cipher', 'tlsVersion', 'alpnProtocol', 'sslcontext'.
   */
  getExtraInfo(name: string): unknown;
  getExtraInfo<D>(name: string, defaultValue: D): unknown;
}

/** The transport of a subprocess's stdin, stdout or stderr pipe. */
export class SubprocessPipeTransport extends Transport {
  protected constructor();
}

/** A listening socket of a server. */
export interface ServerSocket extends Address {
  fd: number;
}

/** A listening server (asyncio.Server): TCP or Unix, with or without TLS. */
export class Server implements Refable {
  private constructor();
  getLoop(): Loop;
  unref(): this;
  ref(): this;
  hasRef(): boolean;
  /** Stops listening; accepted connections stay open. Idempotent. */
  close(): void;
  isServing(): boolean;
  readonly listening: boolean;
  startServing(): void;
  /** Starts serving if needed; resolves once the server is closed. */
  serveForever(options?: OperationOptions): Promise<void>;
  /** Resolves once the server is closed and all its connections are gone. */
  waitClosed(options?: OperationOptions): Promise<void>;
  /** The listening sockets (empty once closed). */
  readonly sockets: ServerSocket[];
  /** The address of the first listening socket ({host, port} or a path), or null once closed. */
  readonly sockname: SocketAddress | null;
  /** The port of the first listening socket, or null. */
  readonly port: number | null;
  /** Node's server.address(). */
  address(): NodeAddressInfo | string | null;
}

/** A datagram endpoint (asyncio.DatagramTransport): UDP or a Unix datagram socket. */
export class DatagramTransport implements Refable {
  private constructor();
  getLoop(): Loop;
  unref(): this;
  ref(): this;
  hasRef(): boolean;
  /** Sends one datagram to addr, or to the remote address without one. Never blocks. */
  sendto(data: string | ArrayBufferView, addr?: AddressLike | null): void;
  close(): void;
  abort(): void;
  isClosing(): boolean;
  getWriteBufferSize(): number;
  setWriteBufferLimits(high?: number, low?: number): void;
  getWriteBufferLimits(): { low: number; high: number };
  getProtocol(): DatagramProtocol;
  setProtocol(protocol: DatagramProtocol): void;
  readonly sockname: SocketAddress | null;
  readonly peername: SocketAddress | null;
  address(): NodeAddressInfo | string | null;
  /** 'sockname', 'peername', 'socket'. */
  getExtraInfo(name: string): unknown;
  getExtraInfo<D>(name: string, defaultValue: D): unknown;
}

/** A child process (asyncio.SubprocessTransport). */
export class SubprocessTransport implements Refable {
  private constructor();
  getLoop(): Loop;
  unref(): this;
  ref(): this;
  hasRef(): boolean;
  readonly pid: number;
  readonly spawnargs: string[];
  getPid(): number;
  /** Its exit status, or minus the signal that killed it; null while it runs. */
  getReturncode(): number | null;
  /** Node's ChildProcess.exitCode / signalCode. */
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  /** Resolves with the return code once the child exited. */
  wait(): Promise<number>;
  getPipeTransport(fd: 0 | 1 | 2): SubprocessPipeTransport | null;
  sendSignal(signal: NodeJS.Signals | number): void;
  terminate(): void;
  kill(): void;
  /** Closes the pipes and kills the child if it still runs. */
  close(): void;
  isClosing(): boolean;
  getProtocol(): SubprocessProtocol;
  setProtocol(protocol: SubprocessProtocol): void;
  getExtraInfo(name: string): unknown;
  getExtraInfo<D>(name: string, defaultValue: D): unknown;
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

type PEM = string | Buffer | Uint8Array;

/** Node's TLS options, for the library's TLS (Go's crypto/tls). */
export interface TlsOptions {
  /** Certificate chain(s) (PEM); a server needs one. */
  cert?: PEM | PEM[];
  /** Private key(s), paired with cert by index (a key may be inside its cert). */
  key?: PEM | PEM[];
  /** CA certificates to trust instead of the system's. */
  ca?: PEM | PEM[];
  /** Trust the system's CAs as well as `ca`. */
  defaultCa?: boolean;
  /** Client: SNI and the name verified (default: the host). */
  servername?: string;
  ALPNProtocols?: Array<string | Uint8Array>;
  /** Client: verify the server (default true). Server with requestCert: require a valid client certificate (default true). */
  rejectUnauthorized?: boolean;
  /** Server: ask for a client certificate. */
  requestCert?: boolean;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Milliseconds (the library's default is 60000). */
  handshakeTimeout?: number;
  /** Use this context's settings. */
  secureContext?: SecureContext;
}

/** TLS settings (Node's SecureContext); reuse one for many connections. */
export class SecureContext {
  constructor(options?: TlsOptions);
  readonly options: TlsOptions;
}

export function createSecureContext(options?: TlsOptions): SecureContext;

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

export type Family = 0 | 4 | 6 | 'IPv4' | 'IPv6' | number;

export interface ConnectionOptions extends OperationOptions {
  /** Bind the local end to this address first. */
  localAddr?: Address;
  family?: Family;
  /** Happy Eyeballs: start the next address after this many ms. */
  happyEyeballsDelay?: number;
  interleave?: number;
  flags?: number;
  /** Wrap this connected socket fd instead of connecting. */
  sock?: number;
  /** TLS: true (system CAs), TLS options, or a SecureContext. */
  tls?: boolean | TlsOptions | SecureContext;
  /** With tls: the name to verify and send. */
  servername?: string;
}

export interface ServerOptions extends OperationOptions {
  /** Listen backlog (default 100). */
  backlog?: number;
  /** SO_REUSEADDR (default true). */
  reuseAddress?: boolean;
  /** SO_REUSEPORT (default false). */
  reusePort?: boolean;
  /** Accept connections at once (default true); else call startServing(). */
  startServing?: boolean;
  family?: Family;
  flags?: number;
  /** Listen on this bound socket fd. */
  sock?: number;
  /** TLS for accepted connections: options with cert and key, or a SecureContext. */
  tls?: TlsOptions | SecureContext;
}

export interface UnixConnectionOptions extends OperationOptions {
  tls?: boolean | TlsOptions | SecureContext;
  servername?: string;
}

export interface UnixServerOptions extends OperationOptions {
  backlog?: number;
  startServing?: boolean;
  /** Remove the socket file when the server closes (default true). */
  cleanupSocket?: boolean;
  tls?: TlsOptions | SecureContext;
}

export interface DatagramEndpointOptions extends OperationOptions {
  localAddr?: AddressLike;
  remoteAddr?: AddressLike;
  family?: Family | 'unix';
  reusePort?: boolean;
  allowBroadcast?: boolean;
  /** Use this datagram socket fd. */
  sock?: number;
}

export type StdioOption = 'pipe' | 'ignore' | 'inherit' | number | { fd: number };

export interface SubprocessOptions extends OperationOptions {
  stdin?: StdioOption;
  stdout?: StdioOption;
  stderr?: StdioOption | 'stdout';
  stdio?: StdioOption | [StdioOption?, StdioOption?, (StdioOption | 'stdout')?];
  /** The child's environment (default: process.env). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** A new session (setsid). */
  detached?: boolean;
}

export interface StartTlsOptions extends TlsOptions, OperationOptions {
  /** The server side (default false). */
  isServer?: boolean;
}

export interface SendfileOptions extends OperationOptions {
  /** Read the file where sendfile(2) cannot (default true). */
  fallback?: boolean;
}

export interface AddrInfo {
  address: string;
  family: 4 | 6;
  port: number;
  /** The platform's SOCK_* value (see constants). */
  type: number;
  /** The platform's IPPROTO_* value. */
  protocol: number;
  canonname: string;
  scopeid: number;
}

export interface GetaddrinfoOptions extends OperationOptions {
  family?: Family;
  type?: 'stream' | 'dgram' | 'raw' | number;
  protocol?: 'tcp' | 'udp' | number;
  /** constants.AI_* */
  flags?: number;
}

type FdLike = number | { fd: number };

/** The loop's error reports, as asyncio's exception-handler context. */
export interface ExceptionContext {
  message: string;
  exception?: unknown;
  transport?: Transport | DatagramTransport | SubprocessTransport;
  server?: Server;
  [key: string]: unknown;
}

export type ExceptionHandler = (loop: Loop, context: ExceptionContext) => void;

/**
 * An asyncio event loop run by libasyncloop and driven by Node's event loop:
 * it never blocks the JS thread and keeps the process alive only while it
 * has live work. An exception thrown by a callback it runs is reported as an
 * uncaught exception ('uncaughtException'), once the current iteration ends.
 */
export class Loop {
  constructor();
  /** The loop's monotonic clock in milliseconds (CLOCK_MONOTONIC, as process.hrtime; asyncio's loop.time() x 1000). */
  time(): number;
  /** Runs fn(...args) on the next iteration; FIFO. */
  callSoon<A extends unknown[]>(fn: (...args: A) => void, ...args: A): Handle;
  /** callSoon through the library's thread-safe queue (wakes the loop through its fd). */
  callSoonThreadsafe<A extends unknown[]>(fn: (...args: A) => void, ...args: A): Handle;
  /** Runs fn(...args) after `delay` milliseconds. */
  callLater<A extends unknown[]>(delay: number, fn: (...args: A) => void, ...args: A): TimerHandle;
  /** Runs fn(...args) at loop time `when` (milliseconds, see time()). */
  callAt<A extends unknown[]>(when: number, fn: (...args: A) => void, ...args: A): TimerHandle;
  /** Drops pending callbacks; throws EBUSY while objects live. Idempotent. */
  close(): void;
  isClosed(): boolean;
  /** True only while the loop runs an iteration (i.e. inside its callbacks). */
  isRunning(): boolean;
  setDebug(enabled: boolean): void;
  getDebug(): boolean;
  /** Debug mode reports callbacks that take this long (ms; default 100). */
  slowCallbackDuration: number;
  createFuture<T = unknown>(): Future<T>;
  /** The C handle (aloop_loop_t *) for a native library written against asyncloop.h (docs/interop.md). */
  readonly handle: bigint;
  /** A C future (aloop_future_t *) of a native library as a Promise of its pointer-sized result; takes over the caller's reference. */
  wrapFuture(future: bigint, options?: { signal?: AbortSignal; timeout?: number;
                                         release?: (result: bigint) => void }): Promise<bigint>;
  /** Native code changed the loop's work outside its callbacks: re-arm Node's wake-up. */
  wakeup(): void;

  /** Listens on host:port (host null or '' = all interfaces, or several hosts; port 0 = any free port). */
  createServer(host: string | string[] | null, port: number, protocolFactory: () => StreamProtocol,
               options?: ServerOptions): Promise<Server>;
  /** Connects (host null: loopback); resolves once the protocol's connectionMade has run. */
  createConnection(host: string | null, port: number, protocol: StreamProtocol | (() => StreamProtocol),
                   options?: ConnectionOptions): Promise<Transport>;
  createUnixConnection(path: string, protocol: StreamProtocol | (() => StreamProtocol),
                       options?: UnixConnectionOptions): Promise<Transport>;
  createUnixServer(path: string, protocolFactory: () => StreamProtocol,
                   options?: UnixServerOptions): Promise<Server>;
  connectAcceptedSocket(fd: FdLike, protocol: StreamProtocol | (() => StreamProtocol),
                        options?: OperationOptions): Promise<Transport>;
  connectReadPipe(protocol: StreamProtocol | (() => StreamProtocol), pipe: FdLike,
                  options?: OperationOptions): Promise<Transport>;
  connectWritePipe(protocol: StreamProtocol | (() => StreamProtocol), pipe: FdLike,
                   options?: OperationOptions): Promise<Transport>;
  createDatagramEndpoint(protocol: DatagramProtocol | (() => DatagramProtocol),
                         options?: DatagramEndpointOptions): Promise<DatagramTransport>;
  /** Resolves with the bytes sent. */
  sendfile(transport: Transport, file: FdLike, offset?: number, count?: number,
           options?: SendfileOptions): Promise<number>;
  /** Upgrades a connected transport to TLS; resolves to the same transport. */
  startTls(transport: Transport, options?: StartTlsOptions): Promise<Transport>;

  subprocessExec(protocol: SubprocessProtocol | (() => SubprocessProtocol), file: string,
                 args?: string[], options?: SubprocessOptions): Promise<SubprocessTransport>;
  subprocessExec(protocol: SubprocessProtocol | (() => SubprocessProtocol), file: string,
                 options?: SubprocessOptions): Promise<SubprocessTransport>;
  subprocessShell(protocol: SubprocessProtocol | (() => SubprocessProtocol), cmd: string,
                  options?: SubprocessOptions): Promise<SubprocessTransport>;
  addSignalHandler<A extends unknown[]>(signal: NodeJS.Signals | number, fn: (...args: A) => void, ...args: A): void;
  removeSignalHandler(signal: NodeJS.Signals | number): boolean;

  getaddrinfo(host: string | null, port: number | string | null, options?: GetaddrinfoOptions): Promise<AddrInfo[]>;
  getnameinfo(addr: Address | [string, number], flags?: number,
              options?: OperationOptions): Promise<{ host: string; service: string }>;

  sockRecv(sock: FdLike, nbytes: number, options?: OperationOptions): Promise<Buffer>;
  sockRecvInto(sock: FdLike, buf: ArrayBufferView, options?: OperationOptions): Promise<number>;
  sockRecvfrom(sock: FdLike, bufsize: number, options?: OperationOptions): Promise<{ data: Buffer; addr: SocketAddress }>;
  sockRecvfromInto(sock: FdLike, buf: ArrayBufferView, nbytes?: number,
                   options?: OperationOptions): Promise<{ nbytes: number; addr: SocketAddress }>;
  sockSendall(sock: FdLike, data: string | ArrayBufferView, options?: OperationOptions): Promise<void>;
  sockSendto(sock: FdLike, data: string | ArrayBufferView, addr: AddressLike, options?: OperationOptions): Promise<number>;
  sockConnect(sock: FdLike, addr: AddressLike, options?: OperationOptions): Promise<void>;
  sockAccept(sock: FdLike, options?: OperationOptions): Promise<{ fd: number; addr: SocketAddress }>;
  sockSendfile(sock: FdLike, file: FdLike, offset?: number, count?: number,
               options?: SendfileOptions): Promise<number>;

  addReader<A extends unknown[]>(fd: number, fn: (...args: A) => void, ...args: A): void;
  removeReader(fd: number): boolean;
  addWriter<A extends unknown[]>(fd: number, fn: (...args: A) => void, ...args: A): void;
  removeWriter(fd: number): boolean;
  setExceptionHandler(handler: ExceptionHandler | null): void;
  getExceptionHandler(): ExceptionHandler | null;
  callExceptionHandler(context: ExceptionContext): void;
  /** Prints the context to stderr. */
  defaultExceptionHandler(context: ExceptionContext): void;
}

/** A stream.Duplex that is a transport's protocol (pipeline(), for await). */
export class TransportStream extends Duplex implements Protocol {
  constructor(options?: DuplexOptions);
  /** The transport, once connected ('connect' is emitted then). */
  transport: Transport | null;
  connectionMade(transport: Transport): void;
  dataReceived(data: Buffer): void;
  eofReceived(): boolean;
  connectionLost(err: AsyncloopError | null): void;
  pauseWriting(): void;
  resumeWriting(): void;
}

/** A Duplex over a connected transport (it becomes the transport's protocol). */
export function toDuplex(transport: Transport, options?: DuplexOptions): TransportStream;

/** The loop whose callbacks are running; throws ERR_ASYNCLOOP_NO_LOOP elsewhere. */
export function getRunningLoop(): Loop;
/** The running loop, else this thread's current loop, created on first use (asyncio.get_event_loop). */
export function getEventLoop(): Loop;
export function setEventLoop(loop: Loop | null): void;
export function newEventLoop(): Loop;

/** Socket fds for the sock_* operations (non-blocking, close-on-exec). */
export const sockets: {
  create(family: Family | 'unix', type?: 'stream' | 'dgram' | number, protocol?: number): number;
  pair(type?: 'stream' | 'dgram' | number): [number, number];
  bind(fd: FdLike, addr: AddressLike): void;
  listen(fd: FdLike, backlog?: number): void;
  name(fd: FdLike): SocketAddress;
  peerName(fd: FdLike): SocketAddress;
  close(fd: FdLike): void;
};

/** The platform's AF_*, SOCK_*, IPPROTO_*, AI_*, NI_* and SOMAXCONN values. */
export const constants: Readonly<Record<string, number>>;

/** The static name of an ALOOP_E* code ('ALOOP_EBADF'; 'ALOOP_OK' for 0). */
export function errName(code: number): string;
/** The static description of an ALOOP_E* code. */
export function strerror(code: number): string;
/** Every ALOOP_E* code by name (codes.ALOOP_ECONNREFUSED === -111), to
 * compare with an Error's .errno. */
export const codes: Readonly<Record<string, number>>;
/** The number of live library handles in the process, of every loop
 * (aloop_live_handles): for leak tests, it returns to where it started once
 * everything is closed. */
export function liveHandles(): number;

/** The loaded library. */
export const version: {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly string: string;
  /** The path the library was loaded from. */
  readonly library: string;
  /** The path of the N-API addon in use. */
  readonly addon: string;
};
