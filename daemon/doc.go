// Package daemon is Monster's daemon, `monster serve`: the HTTP API that
// lets programs in any language log events and operators look at events,
// consumers and dead letters, and webhook consumers that POST events to
// any HTTP endpoint. docs/http-api.md documents the API.
//
// # Shape
//
// [Server] wraps a [monster.Monster]: it logs through the library (group
// commit, declared types, validation) and runs each webhook consumer as an
// ordinary monster consumer whose handler POSTs the event, so webhooks get
// the library's leases, checkpoints, retries with backoff and dead letters.
//
// [Operations] is the set of operator calls the API serves. [Local] runs
// them on a Monster (the server's handlers and `monster` commands given
// --store use it); [Client] runs them on a daemon over HTTP (`monster`
// commands given --server). Both report failures as [*Error], which
// carries the HTTP status and code the API documents.
//
// # Configuration
//
// [Config] is read from a JSON or YAML file ([LoadConfig]): bearer tokens
// with scopes, declared types with JSON Schemas, the undeclared-type
// policy, webhook consumers and size limits. Without tokens the daemon
// only listens on loopback.
//
// # Webhooks
//
// Each delivery is a POST of the event as JSON with the headers
// Monster-Event-Id, Monster-Event-Type, Monster-Consumer, Monster-Attempt
// and Monster-Signature ("sha256=" + hex HMAC-SHA256 of the body with the
// consumer's secret; see [Sign] and [VerifySignature]). A 2xx answer is
// success; anything else, a timeout or a refused connection is retried
// with exponential backoff and finally dead-lettered.
package daemon
