//go:build linux

// Package poll is the loop's OS readiness notifier: epoll plus an eventfd for
// cross-thread wake-ups, coalesced so that at most one eventfd write happens
// per sleep of the loop.
package poll

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Event bits, as epoll reports them.
const (
	In  = unix.EPOLLIN
	Out = unix.EPOLLOUT
	Err = unix.EPOLLERR
	Hup = unix.EPOLLHUP | unix.EPOLLRDHUP
)

// Poller waits for readiness of registered fds. All methods but Wake must be
// called from the loop's thread.
type Poller struct {
	epfd     int
	wakefd   int
	events   []unix.EpollEvent
	pending  atomic.Bool // a wake-up was written and not yet consumed
	noPwait2 bool
	// closeMu orders Wake's eventfd write against Close, so a late Wake
	// never writes into a recycled fd number.
	closeMu sync.RWMutex
	closed  bool
	// OnWake, if set, is called (from the waking thread) after an eventfd
	// write; used by embedders that want a callback instead of the fd.
	OnWake atomic.Pointer[func()]
}

// New creates a poller.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wfd)
		return nil, err
	}
	return &Poller{epfd: epfd, wakefd: wfd, events: make([]unix.EpollEvent, 256)}, nil
}

// Fd is the epoll fd: readable whenever a registered fd is ready or a wake-up
// is pending (for embedding in another loop).
func (p *Poller) Fd() int { return p.epfd }

// Close releases the poller's fds.
func (p *Poller) Close() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	unix.Close(p.wakefd)
	return unix.Close(p.epfd)
}

// Add registers fd for events.
func (p *Poller) Add(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// Mod changes the events of a registered fd.
func (p *Poller) Mod(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
}

// Del unregisters fd.
func (p *Poller) Del(fd int) error {
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// Wake makes a current or next Wait return. Safe from any thread; coalesced.
func (p *Poller) Wake() {
	if !p.pending.CompareAndSwap(false, true) {
		return
	}
	p.closeMu.RLock()
	if p.closed {
		p.closeMu.RUnlock()
		return
	}
	var one = [8]byte{1}
	unix.Write(p.wakefd, one[:])
	p.closeMu.RUnlock()
	if f := p.OnWake.Load(); f != nil {
		(*f)()
	}
}

// Wait waits up to timeoutNs nanoseconds (< 0: forever, 0: poll) and calls
// fn for every ready fd. It returns whether a wake-up was consumed.
func (p *Poller) Wait(timeoutNs int64, fn func(fd int, events uint32)) (woken bool, err error) {
	n, err := p.wait(timeoutNs)
	if err != nil {
		if err == unix.EINTR {
			return false, nil
		}
		return false, err
	}
	for i := 0; i < n; i++ {
		ev := &p.events[i]
		fd := int(ev.Fd)
		if fd == p.wakefd {
			var buf [8]byte
			unix.Read(p.wakefd, buf[:])
			p.pending.Store(false)
			woken = true
			continue
		}
		fn(fd, ev.Events)
	}
	if n == len(p.events) && n < 4096 {
		p.events = make([]unix.EpollEvent, 2*n)
	}
	return woken, nil
}

func (p *Poller) wait(timeoutNs int64) (int, error) {
	evp := unsafe.Pointer(&p.events[0])
	if timeoutNs == 0 {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(p.epfd), uintptr(evp), uintptr(len(p.events)), 0, 0, 0)
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
	if !p.noPwait2 {
		var tsp unsafe.Pointer
		var ts unix.Timespec
		if timeoutNs > 0 {
			ts = unix.NsecToTimespec(timeoutNs)
			tsp = unsafe.Pointer(&ts)
		}
		r, _, e := unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(p.epfd), uintptr(evp), uintptr(len(p.events)), uintptr(tsp), 0, 0)
		if e == 0 {
			return int(r), nil
		}
		if e != unix.ENOSYS {
			return 0, e
		}
		p.noPwait2 = true
	}
	ms := -1
	if timeoutNs > 0 {
		ms = int((timeoutNs + 999999) / 1000000)
	}
	return unix.EpollWait(p.epfd, p.events, ms)
}
