package main

// This program opens whatever -store (or MONSTER_STORE) names: a path for
// the embedded SQLite file, or a postgres://, mongodb:// or nats:// URL. On
// MongoDB each event type gets its collection, as in pymonster:
// events_event_1, events_user_bought_shirt, events_custom_1; on NATS, a
// subject: monster.ev.event_1, monster.ev.user.bought_shirt,
// monster.ev.custom_1. The background program does not import these
// stores, so that it compiles no driver it does not use.
import (
	_ "github.com/gomonster/monster/store/mongodb"
	_ "github.com/gomonster/monster/store/nats"
	_ "github.com/gomonster/monster/store/postgres"
)
