package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage, from the repository root (the directory of go.work), or with
-root DIR before the command:
	release set-version VERSION   require every sibling at VERSION, drop sibling replaces
	release check                 fail if a go.mod could not be published as it is
	release tags VERSION          print the git tags of a release, one a line
	release proxy VERSION DIR     write a file module proxy of the working tree at VERSION
`

func main() {
	root, args := ".", os.Args[1:]
	if len(args) >= 2 && args[0] == "-root" {
		root, args = args[1], args[2:]
	}
	if err := run(root, args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(root string, args []string, stdout io.Writer) error {
	want := map[string]int{"set-version": 2, "check": 1, "tags": 2, "proxy": 3}
	if len(args) == 0 || want[args[0]] != len(args) {
		return fmt.Errorf("monster: release: bad arguments %q\n%s", args, usage)
	}
	ws, err := ReadWorkspace(root)
	if err != nil {
		return err
	}
	switch args[0] {
	case "set-version":
		return ws.SetVersion(args[1])
	case "check":
		version, err := ws.Check()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ok: siblings required at %s, no replace directive\n", version)
	case "tags":
		if err := checkVersion(ws.Modules, args[1]); err != nil {
			return err
		}
		for _, m := range ws.Published() {
			fmt.Fprintln(stdout, m.Tag(args[1]))
		}
	case "proxy":
		published, err := BuildProxy(root, args[1], args[2])
		if err != nil {
			return err
		}
		for _, m := range published {
			fmt.Fprintf(stdout, "%s@%s\n", m.Path, args[1])
		}
	}
	return nil
}
