package asyncloop

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Option configures an operation (asyncio's keyword arguments). One type
// serves every operation; each documents the options it takes, and an
// option that does not apply to it makes it fail with ALOOP_EINVAL.
type Option func(*options)

// optKind is one bit per option, to reject those that do not apply.
type optKind uint32

const (
	optLocalAddr optKind = 1 << iota
	optRemoteAddr
	optBacklog
	optReuseAddress
	optReusePort
	optStartServing
	optCleanupSocket
	optHappyEyeballs
	optInterleave
	optFamily
	optHosts
	optTLS
	optServerHostname
	optBroadcast
	optSocket
	optEnv
	optDir
	optStdio
	optNewSession
)

var optNames = map[optKind]string{
	optLocalAddr: "WithLocalAddr", optRemoteAddr: "WithRemoteAddr", optBacklog: "WithBacklog",
	optReuseAddress: "WithReuseAddress", optReusePort: "WithReusePort",
	optStartServing: "WithStartServing", optCleanupSocket: "WithCleanupSocket",
	optHappyEyeballs: "WithHappyEyeballs", optInterleave: "WithInterleave",
	optFamily: "WithFamily", optHosts: "WithHosts", optTLS: "WithTLS",
	optServerHostname: "WithServerHostname", optBroadcast: "WithAllowBroadcast",
	optSocket: "WithSocket", optEnv: "WithEnv", optDir: "WithDir", optStdio: "WithStdin/WithStdout/WithStderr",
	optNewSession: "WithNewSession",
}

type options struct {
	set optKind

	localHost  *string
	localPort  int
	remoteHost *string
	remotePort int

	backlog        int
	reuseAddress   int32 // -1 default
	reusePort      bool
	startServing   int32 // -1 default
	cleanupSocket  int32 // -1 default
	happyEyeballs  time.Duration
	interleave     int
	family         int
	hosts          []string
	tls            *TLSConfig
	serverHostname string
	broadcast      bool
	sock           syscall.Conn

	env        []string
	envSet     bool
	dir        string
	stdio      [3]Stdio
	newSession bool
}

func collect(opts []Option, allowed optKind, what string) (*options, error) {
	o := &options{reuseAddress: -1, startServing: -1, cleanupSocket: -1}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if extra := o.set &^ allowed; extra != 0 {
		for k := optKind(1); k != 0; k <<= 1 {
			if extra&k != 0 {
				return nil, errInvalid(fmt.Sprintf("option %s does not apply to %s", optNames[k], what))
			}
		}
	}
	return o, nil
}

// WithLocalAddr binds the socket to host:port first (CreateConnection,
// CreateDatagramEndpoint; "" is the wildcard address there).
func WithLocalAddr(host string, port int) Option {
	return func(o *options) { o.set |= optLocalAddr; o.localHost, o.localPort = &host, port }
}

// WithRemoteAddr connects a datagram endpoint to host:port
// (CreateDatagramEndpoint; its default destination with
// WithAllowBroadcast).
func WithRemoteAddr(host string, port int) Option {
	return func(o *options) { o.set |= optRemoteAddr; o.remoteHost, o.remotePort = &host, port }
}

// WithBacklog sets the listen backlog (<= 0: 100, asyncio's default;
// CreateServer, CreateUnixServer).
func WithBacklog(n int) Option { return func(o *options) { o.set |= optBacklog; o.backlog = n } }

// WithReuseAddress sets SO_REUSEADDR (default on; CreateServer).
func WithReuseAddress(on bool) Option {
	return func(o *options) { o.set |= optReuseAddress; o.reuseAddress = b2i(on) }
}

// WithReusePort sets SO_REUSEPORT (default off; CreateServer,
// CreateDatagramEndpoint).
func WithReusePort(on bool) Option {
	return func(o *options) { o.set |= optReusePort; o.reusePort = on }
}

// WithStartServing(false) creates a server that accepts only after
// StartServing (default on; CreateServer, CreateUnixServer).
func WithStartServing(on bool) Option {
	return func(o *options) { o.set |= optStartServing; o.startServing = b2i(on) }
}

// WithCleanupSocket(false) leaves the socket file when a Unix server closes
// (default: removed; CreateUnixServer).
func WithCleanupSocket(on bool) Option {
	return func(o *options) { o.set |= optCleanupSocket; o.cleanupSocket = b2i(on) }
}

// WithHappyEyeballs connects with Happy Eyeballs (RFC 8305): a new attempt
// starts every delay while earlier ones are in progress (asyncio's
// happy_eyeballs_delay; 250 ms is the RFC's value; CreateConnection).
func WithHappyEyeballs(delay time.Duration) Option {
	return func(o *options) { o.set |= optHappyEyeballs; o.happyEyeballs = delay }
}

// WithInterleave reorders the addresses by family (asyncio's interleave;
// CreateConnection).
func WithInterleave(n int) Option {
	return func(o *options) { o.set |= optInterleave; o.interleave = n }
}

// WithFamily restricts name resolution to syscall.AF_INET or AF_INET6
// (CreateConnection, CreateServer, CreateDatagramEndpoint, where
// syscall.AF_UNIX makes the addresses socket paths).
func WithFamily(family int) Option {
	return func(o *options) { o.set |= optFamily; o.family = family }
}

// WithHosts listens on several hosts (CreateServer, whose host argument
// must then be "").
func WithHosts(hosts ...string) Option {
	return func(o *options) { o.set |= optHosts; o.hosts = hosts }
}

// WithTLS uses TLS with cfg (asyncio's ssl=): a client config for
// CreateConnection, a server config for CreateServer and CreateUnixServer.
func WithTLS(cfg *TLSConfig) Option {
	return func(o *options) { o.set |= optTLS; o.tls = cfg }
}

// WithServerHostname is the name a TLS client sends (SNI) and verifies
// (CreateConnection with WithTLS; default: the config's, else the host).
func WithServerHostname(name string) Option {
	return func(o *options) { o.set |= optServerHostname; o.serverHostname = name }
}

// WithAllowBroadcast sets SO_BROADCAST (CreateDatagramEndpoint).
func WithAllowBroadcast(on bool) Option {
	return func(o *options) { o.set |= optBroadcast; o.broadcast = on }
}

// WithSocket uses an existing socket (asyncio's sock=): a connected stream
// socket for CreateConnection, a bound one for CreateServer, a datagram
// socket for CreateDatagramEndpoint. The operation takes a duplicate of its
// descriptor: close c yourself (the library's copy lives as long as the
// transport, server or endpoint).
func WithSocket(c syscall.Conn) Option {
	return func(o *options) { o.set |= optSocket; o.sock = c }
}

// WithEnv sets the child's environment ("NAME=value" strings; default: this
// process's; SubprocessExec, SubprocessShell).
func WithEnv(env []string) Option {
	return func(o *options) { o.set |= optEnv; o.env, o.envSet = env, true }
}

// WithDir sets the child's working directory (SubprocessExec,
// SubprocessShell).
func WithDir(dir string) Option { return func(o *options) { o.set |= optDir; o.dir = dir } }

// WithStdin, WithStdout and WithStderr connect the child's fd 0, 1, 2
// (default StdioPipe; SubprocessExec, SubprocessShell).
func WithStdin(s Stdio) Option  { return func(o *options) { o.set |= optStdio; o.stdio[0] = s } }
func WithStdout(s Stdio) Option { return func(o *options) { o.set |= optStdio; o.stdio[1] = s } }
func WithStderr(s Stdio) Option { return func(o *options) { o.set |= optStdio; o.stdio[2] = s } }

// WithNewSession makes the child call setsid() (asyncio's
// start_new_session; SubprocessExec, SubprocessShell).
func WithNewSession() Option {
	return func(o *options) { o.set |= optNewSession; o.newSession = true }
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// dupConn duplicates the descriptor of c (close-on-exec).
func dupConn(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	return fd, nil
}

// cStrings returns a NULL-terminated array of C strings (in Go memory, valid
// while the result is kept alive) and what keeps it alive.
func cStrings(ss []string) (*[]*byte, []byte) {
	n := 0
	for _, s := range ss {
		n += len(s) + 1
	}
	buf := make([]byte, n)
	ptrs := make([]*byte, 0, len(ss)+1)
	off := 0
	for _, s := range ss {
		copy(buf[off:], s)
		ptrs = append(ptrs, &buf[off])
		off += len(s) + 1
	}
	ptrs = append(ptrs, nil)
	return &ptrs, buf
}

// cStringOrNil is cString, or nil for a nil pointer.
func cStringOrNil(s *string) *byte {
	if s == nil {
		return nil
	}
	return cString(*s)
}
