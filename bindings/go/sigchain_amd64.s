//go:build linux && amd64

#include "textflag.h"

// func sigchainTrampolinePC() uintptr
TEXT ·sigchainTrampolinePC(SB),NOSPLIT,$0-8
	MOVQ	$·sigchainTrampoline(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// A SA_SIGINFO signal handler with the C calling convention:
// void sigchainTrampoline(int sig, siginfo_t *info, void *ctx).
// It runs on the signal stack with no Go state: it only saves the three
// arguments in callee-saved registers and calls the two handlers (each a Go
// runtime's C-ABI signal trampoline, which saves what the C ABI requires).
TEXT ·sigchainTrampoline(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	BX
	PUSHQ	R12
	PUSHQ	R13		// 3 pushes + return address: SP is 16-byte aligned
	MOVQ	DI, BX
	MOVQ	SI, R12
	MOVQ	DX, R13
	MOVQ	·sigchainFirst(SB), AX
	CALL	AX
	MOVQ	BX, DI
	MOVQ	R12, SI
	MOVQ	R13, DX
	MOVQ	·sigchainSecond(SB), AX
	CALL	AX
	POPQ	R13
	POPQ	R12
	POPQ	BX
	RET

// func dlopenSIGURGPC() uintptr
TEXT ·dlopenSIGURGPC(SB),NOSPLIT,$0-8
	MOVQ	$·dlopenSIGURGC(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// A C-ABI function called through purego.SyscallN (on the system stack):
// void *dlopenSIGURGC(const char *path, int flags, struct dlopenArgs *a).
// dlopen(path, flags); then, if a->apply: read the SIGURG action into
// a->oldact, store its handler in sigchainSecond, install a->newact unless
// the library left (or gave back) the host's handler (sigchainFirst), and
// send SIGURG to each of a->tids. Returns dlopen's result.
TEXT ·dlopenSIGURGC(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	BX
	PUSHQ	R12
	PUSHQ	R13
	PUSHQ	R14
	PUSHQ	R15		// 5 pushes + return address: 16-byte aligned
	MOVQ	DX, BX		// a
	MOVQ	0(BX), AX
	CALL	AX		// dlopen(DI = path, SI = flags)
	MOVQ	AX, R12
	TESTQ	R12, R12
	JZ	done
	MOVQ	72(BX), AX
	TESTQ	AX, AX
	JZ	done
	// rt_sigaction(SIGURG, NULL, &a->oldact, 8)
	MOVQ	$13, AX
	MOVQ	$23, DI
	XORQ	SI, SI
	LEAQ	40(BX), DX
	MOVQ	$8, R10
	SYSCALL
	MOVQ	AX, 80(BX)
	TESTQ	AX, AX
	JNZ	done
	MOVQ	40(BX), AX
	MOVQ	AX, ·sigchainSecond(SB)
	CMPQ	AX, ·sigchainFirst(SB)
	JEQ	resignal	// the library gave SIGURG back itself (or never took it)
	// rt_sigaction(SIGURG, &a->newact, NULL, 8)
	MOVQ	$13, AX
	MOVQ	$23, DI
	LEAQ	8(BX), SI
	XORQ	DX, DX
	MOVQ	$8, R10
	SYSCALL
	MOVQ	AX, 80(BX)
	TESTQ	AX, AX
	JNZ	done
resignal:
	// tgkill(a->pid, tid, SIGURG) for each tid: a preemption signal lost
	// while the runtime's handler was installed is acknowledged now.
	MOVQ	96(BX), R14
	MOVQ	104(BX), R13
loop:
	TESTQ	R13, R13
	JZ	done
	MOVQ	$234, AX	// SYS_tgkill
	MOVQ	88(BX), DI
	MOVQ	0(R14), SI
	MOVQ	$23, DX
	SYSCALL
	ADDQ	$8, R14
	DECQ	R13
	JMP	loop
done:
	MOVQ	R12, AX
	POPQ	R15
	POPQ	R14
	POPQ	R13
	POPQ	R12
	POPQ	BX
	RET
