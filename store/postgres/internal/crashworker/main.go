// Command crashworker is the multi-process tests' worker process on
// PostgreSQL stores (postgres:// URLs): the core module's crashworker with
// the PostgreSQL store imported. store/postgres's TestScaleOut builds and
// runs it.
package main

import (
	"github.com/gomonster/monster/internal/crashtest/crashworker"
	_ "github.com/gomonster/monster/store/postgres"
)

func main() { crashworker.Main() }
