package crashtest

import "syscall"

// sysProcAttr makes the kernel kill a worker if the test process dies
// without running its cleanups (a test timeout, a kill of go test).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
