package crashtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// builds holds the worker binaries built by this test binary, by package.
var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string
}

// BuildWorker builds the worker command pkg (an import path, built in the
// test's module) once per test binary, without -race, so that the
// processes the tests start and kill are fast, and returns the binary's
// path. A worker command is a main package that calls crashworker.Main,
// after importing the stores it needs for their side effects. Call
// RemoveWorkers from TestMain when the tests are done.
func BuildWorker(t testing.TB, pkg string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the multi-process tests need Unix signals")
	}
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if bin, ok := builds.bins[pkg]; ok {
		return bin
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the worker with: %v", err)
	}
	if builds.dir == "" {
		if builds.dir, err = os.MkdirTemp("", "monster-crashtest-"); err != nil {
			t.Fatal(err)
		}
		builds.bins = map[string]string{}
	}
	bin := filepath.Join(builds.dir, fmt.Sprintf("worker-%d", len(builds.bins)))
	out, err := exec.Command(goTool, "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	builds.bins[pkg] = bin
	return bin
}

// RemoveWorkers deletes the binaries BuildWorker built.
func RemoveWorkers() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir, builds.bins = "", nil
	}
}
