module github.com/gomonster/monster/reliability

go 1.26.8

require (
	github.com/gomonster/monster v0.1.0
	github.com/hanwen/go-fuse/v2 v2.12.1
	modernc.org/sqlite v1.60.1
)
