package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Fold folds the type counts' tail now (counts.go).
func (s *Store) Fold(ctx context.Context) error { return s.fold(ctx) }

// SetFoldAfter sets how many appended events start a background fold;
// WaitFolds waits for the background folds started so far.
func (s *Store) SetFoldAfter(n int64) { s.foldAfter = n }
func (s *Store) WaitFolds()           { s.bg.Wait() }

// CreateV1Schema creates schema at version 1, as that version's Open left
// it.
func CreateV1Schema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return CreateSchemaAt(ctx, pool, schema, 1)
}

// CreateSchemaAt creates schema at the given version, as that version's
// Open left it.
func CreateSchemaAt(ctx context.Context, pool *pgxpool.Pool, schema string, version int) error {
	s := &Store{pool: pool, schema: schema}
	for range version {
		if _, err := s.migrateStep(ctx); err != nil {
			return err
		}
	}
	return nil
}
