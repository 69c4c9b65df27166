package main

// The command line opens every store by URL: importing a store package
// registers its scheme. The command is its own module, so that these
// stores' client libraries never enter the core module.
import (
	_ "github.com/gomonster/monster/store/mongodb"
	_ "github.com/gomonster/monster/store/nats"
	_ "github.com/gomonster/monster/store/postgres"
)
