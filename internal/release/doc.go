// Command release sets the versions of the repository's Go modules for a
// release, lists their tags, checks that their go.mod files can be
// published, and builds a file-based module proxy from the working tree, so
// that CI can install the command line the way a Go user does. See
// docs/development.md for the release procedure.
//
// The repository's modules are the ones go.work uses: the root module, the
// stores with heavy client libraries (store/postgres, store/mongodb, ...),
// cmd/monster, examples and bench. Each module's go.mod requires its
// siblings at a real version and has no replace directive, so that it
// builds the same from the module proxy as here; go.work ties the working
// trees together for development. Modules under internal/ (this tool) are
// not published.
//
// Usage, from the repository root:
//
//	go run ./internal/release set-version v0.2.0   # rewrite sibling requirements, drop sibling replaces
//	go run ./internal/release check                # fail if a go.mod could not be published
//	go run ./internal/release tags v0.2.0          # the tags to push, one a line
//	go run ./internal/release proxy v0.2.0 DIR     # a file proxy (GOPROXY=file://DIR) of the working tree
package main
