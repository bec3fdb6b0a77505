'use strict';
/**
 * Subprocesses (asyncio's subprocess_exec / subprocess_shell) as Loop
 * methods. The child's stdin, stdout and stderr are pipes by default, each
 * with a transport (SubprocessTransport.getPipeTransport(fd)); the child is
 * reaped by the library.
 */
const { native, operation, checkOptions } = require('./native');
const { extendLoop } = require('./loop');
const { SubprocessTransport } = require('./transports');
const { protocolOf } = require('./net');

// aloop_stdio_t
const PIPE = 0;
const DEVNULL = 1;
const INHERIT = 2;
const FD = 3;
const STDOUT = 4;

/** One of stdin/stdout/stderr: 'pipe' (default), 'ignore' (/dev/null),
 * 'inherit', 'stdout' (stderr only: with stdout), an fd, or an object with
 * an fd (a FileHandle, process.stdout). */
function stdio(v, name) {
  if (v === undefined || v === 'pipe' || v === 'overlapped') return [PIPE, -1];
  if (v === 'ignore' || v === 'devnull') return [DEVNULL, -1];
  if (v === 'inherit' || v === null) return [INHERIT, -1];
  if (v === 'stdout' && name === 'stderr') return [STDOUT, -1];
  if (Number.isInteger(v) && v >= 0) return [FD, v];
  if (v !== null && typeof v === 'object' && Number.isInteger(v.fd)) return [FD, v.fd];
  throw new TypeError(`options.${name} must be 'pipe', 'ignore', 'inherit', an fd` +
                      `${name === 'stderr' ? " or 'stdout'" : ''}`);
}

function spawnOptions(options) {
  const io = Array.isArray(options.stdio) ? options.stdio
    : typeof options.stdio === 'string' ? [options.stdio, options.stdio, options.stdio] : [];
  const [stdin, stdinFd] = stdio(options.stdin ?? io[0], 'stdin');
  const [stdout, stdoutFd] = stdio(options.stdout ?? io[1], 'stdout');
  const [stderr, stderrFd] = stdio(options.stderr ?? io[2], 'stderr');
  let env;
  if (options.env !== undefined && options.env !== null) {
    if (typeof options.env !== 'object') throw new TypeError('options.env must be an object');
    env = Object.entries(options.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  }
  if (options.cwd !== undefined && options.cwd !== null && typeof options.cwd !== 'string') {
    throw new TypeError('options.cwd must be a string');
  }
  return {
    stdin, stdout, stderr, stdinFd, stdoutFd, stderrFd, env,
    cwd: options.cwd ?? undefined,
    startNewSession: !!(options.startNewSession ?? options.detached),
  };
}

function spawnFailed(file, spawnargs) {
  return (err) => {
    if (err && typeof err.errno === 'number' && err.syscall === undefined && err.errno > -3000) {
      err.syscall = `spawn ${file}`;
      err.path = file;
      err.spawnargs = spawnargs;
      err.message = `spawn ${file} ${err.code}`;
    }
    throw err;
  };
}

class ProcessMethods {
  /**
   * Starts file with args (asyncio's subprocess_exec; Node's spawn(file,
   * args)); file without a slash is looked up in the PATH of the child's
   * environment. Resolves to the SubprocessTransport after the protocol's
   * connectionMade. options: {stdin, stdout, stderr ('pipe', 'ignore',
   * 'inherit', an fd; stderr also 'stdout'), stdio (Node's array), env (an
   * object; default process.env), cwd, detached (a new session), signal,
   * timeout}.
   */
  async subprocessExec(protocol, file, args, options) {
    if (!Array.isArray(args)) {
      options = args;
      args = [];
    }
    options = checkOptions(options);
    if (typeof file !== 'string') throw new TypeError('file must be a string');
    const argv = [file, ...args.map(String)];
    const proc = new SubprocessTransport(this, protocolOf(protocol), argv);
    return operation(options, (c) => native.subprocessExec(this, proc, argv, spawnOptions(options), c),
      null, {}, (p) => p.close()).catch(spawnFailed(file, argv));
  }

  /** Runs cmd with /bin/sh -c (asyncio's subprocess_shell); as subprocessExec. */
  async subprocessShell(protocol, cmd, options) {
    options = checkOptions(options);
    if (typeof cmd !== 'string') throw new TypeError('cmd must be a string');
    const argv = ['/bin/sh', '-c', cmd];
    const proc = new SubprocessTransport(this, protocolOf(protocol), argv);
    return operation(options, (c) => native.subprocessShell(this, proc, cmd, spawnOptions(options), c),
      null, {}, (p) => p.close()).catch(spawnFailed('/bin/sh', argv));
  }
}

extendLoop(ProcessMethods);

module.exports = {};
