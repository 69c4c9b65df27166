//go:build !(linux || darwin)

package sqlite

// noSpaceLeft cannot tell on this system; SQLITE_FULL still names a full
// disk.
func noSpaceLeft(path string) bool { return false }
