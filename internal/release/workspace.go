package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Module is one module of the workspace.
type Module struct {
	Dir  string // relative to the workspace root, slash-separated: "." or "store/postgres"
	Path string // module path, from its go.mod
}

// Published reports whether a release tags and publishes the module: all
// but those under internal/.
func (m Module) Published() bool {
	return !slices.Contains(strings.Split(m.Dir, "/"), "internal")
}

// Tag returns the module's git tag for version: the version itself for the
// root module, "DIR/version" for the others, as the go command expects.
func (m Module) Tag(version string) string {
	if m.Dir == "." {
		return version
	}
	return m.Dir + "/" + version
}

// Workspace is the set of modules listed by a go.work file.
type Workspace struct {
	Root    string // the directory of go.work
	Modules []Module
}

// ReadWorkspace reads root/go.work and each listed module's go.mod. The
// modules are found from go.work, not from a fixed list, so that a module
// added to go.work (a new store) is released with the others.
func ReadWorkspace(root string) (*Workspace, error) {
	name := filepath.Join(root, "go.work")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("monster: release: %w (run from the repository root, or pass its go.work's directory)", err)
	}
	work, err := modfile.ParseWork(name, data, nil)
	if err != nil {
		return nil, fmt.Errorf("monster: release: %w", err)
	}
	ws := &Workspace{Root: root}
	for _, use := range work.Use {
		dir := path.Clean(filepath.ToSlash(use.Path))
		f, err := readGoMod(filepath.Join(root, filepath.FromSlash(dir), "go.mod"))
		if err != nil {
			return nil, err
		}
		ws.Modules = append(ws.Modules, Module{Dir: dir, Path: f.Module.Mod.Path})
	}
	if len(ws.Modules) == 0 {
		return nil, fmt.Errorf("monster: release: %s uses no module (add them with go work use)", name)
	}
	return ws, nil
}

// Published returns the modules a release publishes.
func (ws *Workspace) Published() []Module {
	var out []Module
	for _, m := range ws.Modules {
		if m.Published() {
			out = append(out, m)
		}
	}
	return out
}

func (ws *Workspace) isSibling(modulePath string) bool {
	return slices.ContainsFunc(ws.Modules, func(m Module) bool { return m.Path == modulePath })
}

func (ws *Workspace) goModPath(m Module) string {
	return filepath.Join(ws.Root, filepath.FromSlash(m.Dir), "go.mod")
}

// SetVersion rewrites every module's go.mod so that it requires its
// siblings at version and drops the replace directives that pointed them at
// the working tree. It refuses a replace of any other module: the go
// command ignores replace directives in modules it downloads, so a
// published go.mod must build without them. It changes no file if it
// refuses.
func (ws *Workspace) SetVersion(version string) error {
	if err := checkVersion(ws.Modules, version); err != nil {
		return err
	}
	formatted := make(map[string][]byte)
	for _, m := range ws.Modules {
		name := ws.goModPath(m)
		f, err := readGoMod(name)
		if err != nil {
			return err
		}
		for _, r := range f.Require {
			if ws.isSibling(r.Mod.Path) && r.Mod.Version != version {
				// AddRequire replaces the version of an existing requirement,
				// keeping its comments.
				if err := f.AddRequire(r.Mod.Path, version); err != nil {
					return fmt.Errorf("monster: release: %s: %w", name, err)
				}
			}
		}
		for _, r := range slices.Clone(f.Replace) {
			if !ws.isSibling(r.Old.Path) {
				return fmt.Errorf("monster: release: %s:%d replaces %s, which is not a module of go.work: a published go.mod cannot replace (require a released version instead)",
					name, r.Syntax.Start.Line, r.Old.Path)
			}
			if err := f.DropReplace(r.Old.Path, r.Old.Version); err != nil {
				return fmt.Errorf("monster: release: %s: %w", name, err)
			}
		}
		f.Cleanup()
		data, err := f.Format()
		if err != nil {
			return fmt.Errorf("monster: release: %s: %w", name, err)
		}
		formatted[name] = data
	}
	work, err := ws.setWorkReplaces(version)
	if err != nil {
		return err
	}
	for _, m := range ws.Modules {
		name := ws.goModPath(m)
		if err := os.WriteFile(name, formatted[name], 0o644); err != nil {
			return fmt.Errorf("monster: release: %w", err)
		}
	}
	if err := os.WriteFile(ws.workPath(), work, 0o644); err != nil {
		return fmt.Errorf("monster: release: %w", err)
	}
	return nil
}

// setWorkReplaces returns go.work with one replace for each module of the
// workspace, at version, pointing at its directory, and without the
// replaces of those modules at other versions. Without them the go command
// would fetch the siblings' go.mod files at version from the module proxy
// (to build the module graph), which fails for a version not yet tagged
// and, once it is, reads the published go.mod instead of the working
// tree's. A replace at every version would be refused: a module go.work
// uses cannot also be replaced at all versions.
func (ws *Workspace) setWorkReplaces(version string) ([]byte, error) {
	name := ws.workPath()
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("monster: release: %w", err)
	}
	work, err := modfile.ParseWork(name, data, nil)
	if err != nil {
		return nil, fmt.Errorf("monster: release: %w", err)
	}
	for _, r := range slices.Clone(work.Replace) {
		if ws.isSibling(r.Old.Path) {
			if err := work.DropReplace(r.Old.Path, r.Old.Version); err != nil {
				return nil, fmt.Errorf("monster: release: %s: %w", name, err)
			}
		}
	}
	work.Cleanup()
	// One replace block, which AddReplace would not write.
	var block strings.Builder
	block.WriteString("\n// The modules' go.mod files require their siblings at this version; these\n" +
		"// replaces keep the go command from fetching them (go run ./internal/release\n" +
		"// set-version VERSION rewrites both; see docs/development.md).\nreplace (\n")
	for _, m := range ws.Modules {
		fmt.Fprintf(&block, "\t%s %s => %s\n", m.Path, version, m.localPath())
	}
	block.WriteString(")\n")
	out := append(bytes.TrimRight(modfile.Format(work.Syntax), "\n"), '\n')
	out = append(out, block.String()...)
	if _, err := modfile.ParseWork(name, out, nil); err != nil {
		return nil, fmt.Errorf("monster: release: %s after the update: %w", name, err)
	}
	return out, nil
}

func (ws *Workspace) workPath() string { return filepath.Join(ws.Root, "go.work") }

// localPath is the module's directory as go.work's replace names it.
func (m Module) localPath() string {
	if m.Dir == "." {
		return "./"
	}
	return "./" + m.Dir
}

// Check returns an error listing what would make a go.mod unusable from the
// module proxy: a replace directive, a sibling required at a pseudo-version
// or at other versions than the other siblings. It returns the one version
// the siblings are required at ("" if no module requires a sibling).
func (ws *Workspace) Check() (string, error) {
	var problems []string
	versions := map[string][]string{} // version -> "dir requires path"
	for _, m := range ws.Modules {
		name := path.Join(m.Dir, "go.mod")
		f, err := readGoMod(ws.goModPath(m))
		if err != nil {
			return "", err
		}
		for _, r := range f.Replace {
			problems = append(problems, fmt.Sprintf("%s:%d replaces %s", name, r.Syntax.Start.Line, r.Old.Path))
		}
		for _, r := range f.Require {
			if !ws.isSibling(r.Mod.Path) {
				continue
			}
			if module.IsPseudoVersion(r.Mod.Version) || !semver.IsValid(r.Mod.Version) || r.Mod.Version == "v0.0.0" {
				problems = append(problems, fmt.Sprintf("%s requires %s %s, which no release publishes", name, r.Mod.Path, r.Mod.Version))
			}
			versions[r.Mod.Version] = append(versions[r.Mod.Version], fmt.Sprintf("%s requires %s", name, r.Mod.Path))
		}
	}
	work, err := modfile.ParseWork(ws.workPath(), mustRead(ws.workPath()), nil)
	if err != nil {
		return "", fmt.Errorf("monster: release: %w", err)
	}
	for v := range versions {
		if len(problems) > 0 || len(versions) > 1 {
			break // the go.work replaces follow from the versions: fix those first
		}
		for _, m := range ws.Modules {
			if !slices.ContainsFunc(work.Replace, func(r *modfile.Replace) bool {
				return r.Old.Path == m.Path && r.Old.Version == v && path.Clean(r.New.Path) == path.Clean(m.localPath())
			}) {
				problems = append(problems, fmt.Sprintf("go.work does not replace %s %s => %s (the go command would fetch it from the module proxy)", m.Path, v, m.localPath()))
			}
		}
	}
	var version string
	if len(versions) > 1 {
		var lines []string
		for v, who := range versions {
			lines = append(lines, fmt.Sprintf("%s (%s)", v, strings.Join(who, ", ")))
		}
		slices.Sort(lines)
		problems = append(problems, "siblings are required at more than one version: "+strings.Join(lines, "; "))
	}
	for v := range versions {
		version = v
	}
	if len(problems) > 0 {
		return "", errors.New("monster: release: the go.mod files cannot be published as they are:\n\t" +
			strings.Join(problems, "\n\t") +
			"\n(go run ./internal/release set-version VERSION sets every sibling requirement to VERSION and drops the replaces; go.work ties the modules for development)")
	}
	return version, nil
}

func checkVersion(modules []Module, version string) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version || module.IsPseudoVersion(version) {
		return fmt.Errorf("monster: release: version %q is not a release version such as v0.2.0 (semantic, with the v, no build suffix, not a pseudo-version)", version)
	}
	for _, m := range modules {
		if err := module.Check(m.Path, version); err != nil {
			return fmt.Errorf("monster: release: version %q does not fit module %s: %w", version, m.Path, err)
		}
	}
	return nil
}

// mustRead returns the file's content, or nil if it cannot be read (the
// parser then reports what is missing).
func mustRead(name string) []byte {
	data, _ := os.ReadFile(name)
	return data
}

func readGoMod(name string) (*modfile.File, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("monster: release: %w", err)
	}
	f, err := modfile.Parse(name, data, nil)
	if err != nil {
		return nil, fmt.Errorf("monster: release: %w", err)
	}
	if f.Module == nil {
		return nil, fmt.Errorf("monster: release: %s has no module line", name)
	}
	return f, nil
}
