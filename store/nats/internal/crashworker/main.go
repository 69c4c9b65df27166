// Command crashworker is the multi-process tests' worker process on NATS
// stores (nats:// URLs): the core module's crashworker with the NATS store
// imported. store/nats's TestScaleOut builds and runs it.
package main

import (
	"github.com/gomonster/monster/internal/crashtest/crashworker"
	_ "github.com/gomonster/monster/store/nats"
)

func main() { crashworker.Main() }
