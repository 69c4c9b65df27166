package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

// BuildProxy writes into dir a file-based module proxy (GOPROXY=file://dir)
// holding every published module of the workspace at root at version, made
// from the working tree as a release would publish it: a copy of the
// repository's files (those git tracks or would track: not the ignored
// ones) whose go.mod files SetVersion has set to version, each module zipped
// with golang.org/x/mod/zip as the go command expects. The working tree is
// not changed. It returns the modules it published.
func BuildProxy(root, version, dir string) ([]Module, error) {
	src, err := os.MkdirTemp("", "monster-release-")
	if err != nil {
		return nil, fmt.Errorf("monster: release: %w", err)
	}
	defer os.RemoveAll(src)
	if err := copyTree(root, src); err != nil {
		return nil, err
	}
	ws, err := ReadWorkspace(src)
	if err != nil {
		return nil, err
	}
	if err := ws.SetVersion(version); err != nil {
		return nil, err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return nil, err
	}
	published := ws.Published()
	for _, m := range published {
		escPath, err := module.EscapePath(m.Path)
		if err != nil {
			return nil, fmt.Errorf("monster: release: %w", err)
		}
		escVersion, err := module.EscapeVersion(version)
		if err != nil {
			return nil, fmt.Errorf("monster: release: %w", err)
		}
		vdir := filepath.Join(dir, filepath.FromSlash(escPath), "@v")
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			return nil, fmt.Errorf("monster: release: %w", err)
		}
		modDir := filepath.Join(src, filepath.FromSlash(m.Dir))
		var zipped bytes.Buffer
		if err := zip.CreateFromDir(&zipped, module.Version{Path: m.Path, Version: version}, modDir); err != nil {
			return nil, fmt.Errorf("monster: release: zipping %s (%s): %w", m.Path, m.Dir, err)
		}
		goMod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
		if err != nil {
			return nil, fmt.Errorf("monster: release: %w", err)
		}
		for name, data := range map[string][]byte{
			escVersion + ".info": info,
			escVersion + ".mod":  goMod,
			escVersion + ".zip":  zipped.Bytes(),
		} {
			if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
				return nil, fmt.Errorf("monster: release: %w", err)
			}
		}
		list, err := os.OpenFile(filepath.Join(vdir, "list"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("monster: release: %w", err)
		}
		_, err = fmt.Fprintln(list, version)
		if cerr := list.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("monster: release: %w", err)
		}
	}
	return published, nil
}

// copyTree copies into dst the files of the repository at root that a
// commit of the working tree would hold: git's tracked and untracked but
// not ignored files (so no *.db, built binaries or test caches). Without
// git it copies every file but .git.
func copyTree(root, dst string) error {
	var files []string
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err == nil {
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				files = append(files, filepath.FromSlash(f))
			}
		}
	} else {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Name() == ".git" {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				rel, err := filepath.Rel(root, p)
				if err != nil {
					return err
				}
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("monster: release: listing %s: %w", root, err)
		}
	}
	for _, f := range files {
		if err := copyFile(filepath.Join(root, f), filepath.Join(dst, f)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if os.IsNotExist(err) {
		return nil // tracked but deleted in the working tree
	}
	if err != nil {
		return fmt.Errorf("monster: release: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("monster: release: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fmt.Errorf("monster: release: %w", err)
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		return fmt.Errorf("monster: release: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("monster: release: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("monster: release: %w", err)
	}
	return nil
}
