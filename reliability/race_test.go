//go:build reliability && race

package reliability

// raceEnabled: the race detector slows SQLite on FUSE some tenfold, so
// each cut logs fewer events.
const raceEnabled = true
