// Command worker is the crash tests' worker process on the stores of the
// core module (an SQLite file, by path): see package crashworker.
package main

import "github.com/gomonster/monster/internal/crashtest/crashworker"

func main() { crashworker.Main() }
