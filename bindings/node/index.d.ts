// Type definitions for the asyncloop Node binding (bindings/node/index.js).
// Times are seconds on the loop's monotonic clock (Loop.time()), as in asyncio.

/// <reference types="node" />

/** An error from the library: `code` is aloop_err_name(errno), e.g. 'ALOOP_ECONNREFUSED'. */
export interface AsyncloopError extends Error {
  code: string;
  /** The negative ALOOP_E* code (equal to -errno where one exists). */
  errno: number;
}

/** A network address. */
export interface Address {
  host: string;
  port: number;
}

/** A scheduled callback (asyncio.Handle). */
export class Handle {
  /** Handles come from Loop.callSoon and friends. */
  protected constructor();
  /** Cancels the callback; a no-op if it already ran or was cancelled. */
  cancel(): void;
  cancelled(): boolean;
}

/** A timer (asyncio.TimerHandle). */
export class TimerHandle extends Handle {
  protected constructor();
  /** The deadline in loop time (seconds). */
  when(): number;
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
  /** Throws ALOOP_ESTATE if already done. */
  setResult(value: T): void;
  /** Throws ALOOP_ESTATE if already done. */
  setException(exception: unknown): void;
  /** The result; throws the exception, ALOOP_ECANCELED, or ALOOP_ESTATE if not done. */
  result(): T;
  /** The exception or null; throws ALOOP_ECANCELED, or ALOOP_ESTATE if not done. */
  exception(): unknown;
  addDoneCallback(fn: (future: this) => void): void;
  /** Removes every registration of fn that has not run; returns how many. */
  removeDoneCallback(fn: (future: this) => void): number;
  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2>;
}

/**
 * A stream protocol: every method is optional. Methods are called on the
 * JS thread with `this` bound to the protocol.
 */
export interface Protocol {
  connectionMade?(transport: Transport): void;
  /** data is a fresh Buffer the protocol may keep. */
  dataReceived?(data: Buffer): void;
  /** Return true to keep the transport half-open (it may still write). */
  eofReceived?(): boolean | void;
  /** null after a clean close or EOF; the last call for a transport. */
  connectionLost?(err: AsyncloopError | null): void;
  pauseWriting?(): void;
  resumeWriting?(): void;
}

/** A TCP stream transport (asyncio.Transport). */
export class Transport {
  private constructor();
  getLoop(): Loop;
  /** Writes bytes (a string is sent as UTF-8). Never blocks; buffers what the socket does not take. */
  write(data: string | ArrayBufferView): void;
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
   * high 0 pauses writing on any buffered byte.
   */
  setWriteBufferLimits(high?: number, low?: number): void;
  getWriteBufferLimits(): { low: number; high: number };
  getProtocol(): Protocol;
  /** Routes the following callbacks to another protocol. */
  setProtocol(protocol: Protocol): void;
  /** The peer address, or null when unknown. */
  readonly peername: Address | null;
  /** The local address, or null when unknown. */
  readonly sockname: Address | null;
  /** asyncio's get_extra_info: 'peername', 'sockname' (Address) or 'socket' (the fd). */
  getExtraInfo(name: 'peername' | 'sockname'): Address | null;
  getExtraInfo(name: 'socket'): number | null;
  getExtraInfo<D>(name: string, defaultValue: D): Address | number | D;
}

/** A listening socket of a server. */
export interface ServerSocket extends Address {
  fd: number;
}

/** A listening TCP server (asyncio.Server). */
export class Server {
  private constructor();
  getLoop(): Loop;
  /** Stops listening; accepted connections stay open. Idempotent. */
  close(): void;
  isServing(): boolean;
  startServing(): void;
  /** Starts serving if needed; resolves once the server is closed. */
  serveForever(): Promise<void>;
  /** Resolves once the server is closed and all its connections are gone. */
  waitClosed(): Promise<void>;
  /** The listening sockets (empty once closed). */
  readonly sockets: ServerSocket[];
  /** The address of the first listening socket, or null once closed. */
  readonly sockname: Address | null;
  /** The port of the first listening socket, or null once closed. */
  readonly port: number | null;
}

export interface ServerOptions {
  /** Listen backlog (default 100). */
  backlog?: number;
  /** SO_REUSEADDR (default true). */
  reuseAddress?: boolean;
  /** SO_REUSEPORT (default false). */
  reusePort?: boolean;
  /** Accept connections at once (default true); else call startServing(). */
  startServing?: boolean;
}

export interface ConnectionOptions {
  /** Bind the local end to this address first. */
  localAddr?: Address;
}

/** The loop's error reports, as asyncio's exception-handler context. */
export interface ExceptionContext {
  message: string;
  exception?: unknown;
  transport?: Transport;
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
  /** The loop's monotonic clock in seconds (CLOCK_MONOTONIC, as asyncio's loop.time()). */
  time(): number;
  /** Runs fn(...args) on the next iteration; FIFO. */
  callSoon<A extends unknown[]>(fn: (...args: A) => void, ...args: A): Handle;
  /** callSoon through the library's thread-safe queue (wakes the loop through its fd). */
  callSoonThreadsafe<A extends unknown[]>(fn: (...args: A) => void, ...args: A): Handle;
  /** Runs fn(...args) after `delay` seconds. */
  callLater<A extends unknown[]>(delay: number, fn: (...args: A) => void, ...args: A): TimerHandle;
  /** Runs fn(...args) at loop time `when` (seconds, see time()). */
  callAt<A extends unknown[]>(when: number, fn: (...args: A) => void, ...args: A): TimerHandle;
  /** Drops pending callbacks; throws ALOOP_EBUSY while transports, servers or fd watchers live. Idempotent. */
  close(): void;
  isClosed(): boolean;
  /** True only while the loop runs an iteration (i.e. inside its callbacks). */
  isRunning(): boolean;
  setDebug(enabled: boolean): void;
  getDebug(): boolean;
  createFuture<T = unknown>(): Future<T>;
  /** Listens on host:port (host null or '' = all interfaces; port 0 = any free port). */
  createServer(host: string | null, port: number, protocolFactory: () => Protocol,
               options?: ServerOptions): Promise<Server>;
  /** Connects (host null: loopback); resolves once the protocol's connectionMade has run. */
  createConnection(host: string | null, port: number, protocol: Protocol | (() => Protocol),
                   options?: ConnectionOptions): Promise<Transport>;
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

/** This thread's current loop, created on first use (asyncio.get_event_loop). */
export function getEventLoop(): Loop;
export function setEventLoop(loop: Loop | null): void;
export function newEventLoop(): Loop;

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
