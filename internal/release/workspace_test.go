package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRepositoryModulesArePublishable checks the repository's own go.mod
// files: no replace directive, siblings required at one release version,
// and go.work replacing them at that version.
func TestRepositoryModulesArePublishable(t *testing.T) {
	t.Parallel()
	ws, err := ReadWorkspace("../..")
	require.NoError(t, err)
	version, err := ws.Check()
	require.NoError(t, err)
	require.NotEmpty(t, version, "the modules require their siblings")
	var dirs []string
	for _, m := range ws.Published() {
		dirs = append(dirs, m.Dir)
	}
	require.Subset(t, dirs, []string{".", "cmd/monster", "store/postgres", "store/mongodb"})
	require.NotContains(t, dirs, "internal/release", "this tool is not published")
}

// writeFiles writes files (name -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
}

// devWorkspace is a repository laid out as before this tool: modules tied by
// replace directives and pseudo-versions, and a store (store/nats) that
// only go.work names.
func devWorkspace(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.work": "go 1.26.8\n\nuse (\n\t.\n\t./cmd/monster\n\t./internal/release\n\t./store/nats\n\t./store/postgres\n)\n",
		"go.mod":  "module github.com/gomonster/monster\n\ngo 1.26.8\n\nrequire github.com/google/uuid v1.6.0\n",
		"store/postgres/go.mod": "module github.com/gomonster/monster/store/postgres\n\ngo 1.26.8\n\n" +
			"require (\n\tgithub.com/gomonster/monster v0.0.0-00010101000000-000000000000\n\tgithub.com/jackc/pgx/v5 v5.12.0\n)\n\n" +
			"replace github.com/gomonster/monster => ../..\n",
		"store/nats/go.mod": "module github.com/gomonster/monster/store/nats\n\ngo 1.26.8\n\n" +
			"require github.com/gomonster/monster v0.0.0 // the core\n\nreplace github.com/gomonster/monster => ../..\n",
		"cmd/monster/go.mod": "module github.com/gomonster/monster/cmd/monster\n\ngo 1.26.8\n\n" +
			"require (\n\tgithub.com/gomonster/monster v0.0.0\n\tgithub.com/gomonster/monster/store/nats v0.0.0\n\tgithub.com/gomonster/monster/store/postgres v0.0.0\n)\n\n" +
			"replace (\n\tgithub.com/gomonster/monster => ../..\n\tgithub.com/gomonster/monster/store/nats => ../../store/nats\n\tgithub.com/gomonster/monster/store/postgres => ../../store/postgres\n)\n",
		"internal/release/go.mod": "module github.com/gomonster/monster/internal/release\n\ngo 1.26.8\n",
	})
	return root
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(data)
}

func TestSetVersionFindsTheModulesInGoWork(t *testing.T) {
	t.Parallel()
	root := devWorkspace(t)
	ws, err := ReadWorkspace(root)
	require.NoError(t, err)
	_, err = ws.Check()
	require.ErrorContains(t, err, "cmd/monster/go.mod:13 replaces github.com/gomonster/monster/store/nats")
	require.ErrorContains(t, err, "store/postgres/go.mod requires github.com/gomonster/monster v0.0.0-00010101000000-000000000000, which no release publishes")
	require.ErrorContains(t, err, "set-version VERSION")
	require.NotContains(t, err.Error(), "go.work does not replace", "only the go.mod files' problems, which set-version fixes")

	require.NoError(t, ws.SetVersion("v0.3.0"))
	version, err := ws.Check()
	require.NoError(t, err)
	require.Equal(t, "v0.3.0", version)

	// A go.work that lost a replace is named.
	workFile := filepath.Join(root, "go.work")
	saved := readFile(t, workFile)
	require.NoError(t, os.WriteFile(workFile, []byte(strings.Replace(saved, "\tgithub.com/gomonster/monster/store/nats v0.3.0 => ./store/nats\n", "", 1)), 0o644))
	_, err = ws.Check()
	require.ErrorContains(t, err, "go.work does not replace github.com/gomonster/monster/store/nats v0.3.0 => ./store/nats")
	require.NoError(t, os.WriteFile(workFile, []byte(saved), 0o644))

	cmd := readFile(t, filepath.Join(root, "cmd/monster/go.mod"))
	require.NotContains(t, cmd, "replace")
	for _, sibling := range []string{"github.com/gomonster/monster", "github.com/gomonster/monster/store/nats", "github.com/gomonster/monster/store/postgres"} {
		require.Contains(t, cmd, "\t"+sibling+" v0.3.0\n", "the store only go.work names is found too")
	}
	nats := readFile(t, filepath.Join(root, "store/nats/go.mod"))
	require.Contains(t, nats, "require github.com/gomonster/monster v0.3.0 // the core\n", "comments are kept")
	pg := readFile(t, filepath.Join(root, "store/postgres/go.mod"))
	require.Contains(t, pg, "github.com/jackc/pgx/v5 v5.12.0", "other requirements are untouched")
	work := readFile(t, filepath.Join(root, "go.work"))
	require.Contains(t, work, "\tgithub.com/gomonster/monster v0.3.0 => ./\n")
	require.Contains(t, work, "\tgithub.com/gomonster/monster/store/nats v0.3.0 => ./store/nats\n")

	// Run again for the next release: the same shape, the new version, once.
	require.NoError(t, ws.SetVersion("v0.4.0"))
	work = readFile(t, filepath.Join(root, "go.work"))
	require.NotContains(t, work, "v0.3.0")
	require.Equal(t, 1, strings.Count(work, "replace ("), work)
	require.Equal(t, 1, strings.Count(work, "// The modules' go.mod files"), work)
	require.Contains(t, readFile(t, filepath.Join(root, "cmd/monster/go.mod")), "\tgithub.com/gomonster/monster/store/postgres v0.4.0\n")

	var tags bytes.Buffer
	require.NoError(t, run(root, []string{"tags", "v0.4.0"}, &tags))
	require.Equal(t, "v0.4.0\ncmd/monster/v0.4.0\nstore/nats/v0.4.0\nstore/postgres/v0.4.0\n", tags.String(),
		"one tag a published module; internal/ is not published")
}

func TestSetVersionRefusesAndChangesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, version, extraGoMod, wantErr string
	}{
		{"not semver", "0.3", "", `version "0.3" is not a release version such as v0.2.0`},
		{"pseudo-version", "v0.0.0-20240101000000-abcdefabcdef", "", "is not a release version"},
		{"build suffix", "v0.3.0+meta", "", "is not a release version"},
		{"major version without /v2 path", "v2.0.0", "", `version "v2.0.0" does not fit module github.com/gomonster/monster`},
		{"foreign replace", "v0.3.0", "replace github.com/jackc/pgx/v5 => ../pgx\n",
			"replaces github.com/jackc/pgx/v5, which is not a module of go.work: a published go.mod cannot replace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := devWorkspace(t)
			pgMod := filepath.Join(root, "store/postgres/go.mod")
			if tc.extraGoMod != "" {
				require.NoError(t, os.WriteFile(pgMod, []byte(readFile(t, pgMod)+tc.extraGoMod), 0o644))
			}
			before := map[string]string{}
			for _, f := range []string{"go.work", "cmd/monster/go.mod", "store/postgres/go.mod", "store/nats/go.mod"} {
				before[f] = readFile(t, filepath.Join(root, f))
			}
			ws, err := ReadWorkspace(root)
			require.NoError(t, err)
			err = ws.SetVersion(tc.version)
			require.ErrorContains(t, err, tc.wantErr)
			require.True(t, strings.HasPrefix(err.Error(), "monster: "), err.Error())
			for f, content := range before {
				require.Equal(t, content, readFile(t, filepath.Join(root, f)), "%s unchanged", f)
			}
		})
	}
}

func TestReadWorkspaceWithoutGoWorkSaysWhereToRun(t *testing.T) {
	t.Parallel()
	_, err := ReadWorkspace(t.TempDir())
	require.ErrorContains(t, err, "go.work")
	require.ErrorContains(t, err, "run from the repository root")
}
