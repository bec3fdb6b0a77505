// The package's ES module entry: the same objects as index.js, as named
// exports (import { Loop, version, errName } from 'asyncloop-engine').
import cjs from './index.js';

export const {
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
  version,
} = cjs;
export default cjs;
