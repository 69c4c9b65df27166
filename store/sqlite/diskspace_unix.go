//go:build linux || darwin

package sqlite

import (
	"path/filepath"
	"syscall"
)

// noSpaceLeft reports whether the file system holding path (or, for a
// file not yet created, its directory) has no space left for an
// unprivileged writer.
func noSpaceLeft(path string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
			return false
		}
	}
	return st.Bavail == 0
}
