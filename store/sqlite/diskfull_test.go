//go:build linux

package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store/sqlite"
)

// fullDisk mounts a small tmpfs (root on Linux only; the test skips
// otherwise) and returns its directory and a function that fills it.
func fullDisk(t *testing.T) (dir string, fill func()) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux to mount a small file system")
	}
	dir = t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	fill = func() {
		f, err := os.Create(filepath.Join(dir, "filler"))
		require.NoError(t, err)
		defer f.Close()
		chunk := make([]byte, 4096)
		for {
			if _, err := f.Write(chunk); err != nil {
				require.True(t, errors.Is(err, syscall.ENOSPC), "filling: %v", err)
				return
			}
		}
	}
	return dir, fill
}

// A full disk is named as such, not as "disk I/O error (4874)".
func TestOpenOnFullDiskSaysSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, fill := fullDisk(t)

	existing := filepath.Join(dir, "existing.db")
	s, err := sqlite.Open(ctx, existing, nil)
	require.NoError(t, err)
	appendAll(t, s, newEvents(3, "kept"))
	require.NoError(t, s.Close())
	writer, err := sqlite.Open(ctx, filepath.Join(dir, "writer.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = writer.Close() })
	fill()

	// A write says so.
	big := newEvents(1, "big")
	big[0].Data = []byte(`"` + strings.Repeat("x", 256<<10) + `"`)
	_, err = writer.Append(ctx, big)
	require.Error(t, err)
	require.Contains(t, err.Error(), "disk is full")

	// So does opening a store, old or new.
	for _, path := range []string{existing, filepath.Join(dir, "new.db")} {
		_, err := sqlite.Open(ctx, path, nil)
		require.Error(t, err, path)
		t.Logf("%s: %v", path, err)
		require.Contains(t, err.Error(), "disk is full", path)
		require.Contains(t, err.Error(), path)
	}
}
