package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// proxyTestVersion is the version TestGoInstallFromFileProxy publishes: not
// the one the go.mod files name, so that set-version's rewrite is what makes
// the modules fit together.
const proxyTestVersion = "v0.99.0-proxytest"

// TestGoInstallFromFileProxy installs the command line as docs/cli.md tells
// a Go user to, from a file-based module proxy holding the repository's
// modules at a test version, in a GOPATH and module cache of its own and
// outside the workspace, then runs the binary. It fails if a published
// go.mod needs a replace directive or a version no proxy has.
//
// Third-party modules come from this machine's module cache when it has
// them, then from the proxy `go env GOPROXY` names, and are checked against
// the checksum database as usual; only github.com/gomonster/* skips it.
// -trimpath lets later runs reuse the build cache although each run's
// module cache is in a new directory.
func TestGoInstallFromFileProxy(t *testing.T) {
	t.Parallel()
	proxy := t.TempDir()
	published, err := BuildProxy("../..", proxyTestVersion, proxy)
	require.NoError(t, err)
	require.NotEmpty(t, published)

	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	goproxy := "file://" + filepath.ToSlash(proxy) + ",file://" + filepath.ToSlash(filepath.Join(goEnv("GOMODCACHE"), "cache", "download"))
	if upstream := goEnv("GOPROXY"); upstream != "" && upstream != "off" {
		goproxy += "," + upstream
	}
	gopath := t.TempDir()
	env := append(os.Environ(),
		"GOPATH="+gopath,
		"GOMODCACHE="+filepath.Join(gopath, "pkg", "mod"),
		"GOBIN="+filepath.Join(gopath, "bin"),
		"GOPROXY="+goproxy,
		"GONOSUMDB=github.com/gomonster/*",
		"GOWORK=off",
		"GOTOOLCHAIN=local",
		"GOFLAGS="+strings.TrimSpace(goEnv("GOFLAGS")+" -mod=mod -modcacherw -trimpath"),
	)
	outside := t.TempDir() // not in any module
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = outside, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Run(), "%s %s:\n%s", name, strings.Join(args, " "), out.String())
		return out.String()
	}

	run("go", "install", "github.com/gomonster/monster/cmd/monster@latest")
	bin := filepath.Join(gopath, "bin", "monster")
	modules := run("go", "version", "-m", bin)
	for _, mod := range []string{"github.com/gomonster/monster/cmd/monster", "github.com/gomonster/monster", "github.com/gomonster/monster/store/postgres"} {
		require.Regexp(t, `\t`+strings.ReplaceAll(mod, ".", `\.`)+`\t`+strings.ReplaceAll(proxyTestVersion, ".", `\.`)+`\t`, modules,
			"@latest is the published test version, its siblings too")
	}

	db := filepath.Join(t.TempDir(), "monster.db")
	run(bin, "log", "--store", db, "install.checked", `{"via":"file proxy"}`)
	var page struct {
		Events []struct {
			Type string
			Data json.RawMessage
		}
	}
	require.NoError(t, json.Unmarshal([]byte(run(bin, "events", "--store", db, "--json")), &page))
	require.Len(t, page.Events, 1)
	require.Equal(t, "install.checked", page.Events[0].Type)
	require.JSONEq(t, `{"via":"file proxy"}`, string(page.Events[0].Data))
}
