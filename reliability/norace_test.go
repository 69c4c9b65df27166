//go:build reliability && !race

package reliability

const raceEnabled = false
