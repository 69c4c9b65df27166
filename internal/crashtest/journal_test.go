package crashtest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReadJournal checks the journal parser on what SIGKILL leaves behind:
// a record cut short (the kernel can stop a write at a page boundary when
// the signal arrives), with another process's record written right after
// it on the same line, and a cut last record.
func TestReadJournal(t *testing.T) {
	const id1 = "01a2024e-1b73-7ef4-922c-a6df7c4f2df3"
	const id2 = "01a2024e-1b73-7d6b-bba5-df882cd14473"
	const id3 = "01a2024e-1b73-7dff-8c0a-016bb3a96113"
	content := "#H alpha 10 " + id1 + " key-01 1 1 1700000000000000000 1700000000000000000 .\n" +
		"#H beta 11 " + id2 + " key-0" + // torn: no end
		"#H alpha 12 " + id2 + " key-02 1 2 1700000000000000001 1700000000000000002 .\n" +
		"#O alpha 12 key-02 2 .\n" +
		"#P " + id3 + " key-03 7 .\n" +
		"#H alpha 12 " + id3 + " key-03 7 1 1700000000000000003 17000" // torn at the end
	path := filepath.Join(t.TempDir(), "journal")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := readJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.handled) != 2 || j.handled[0].id != id1 || j.handled[1].id != id2 || j.handled[1].pid != 12 || j.handled[1].attempt != 2 {
		t.Errorf("handled = %+v, want the records of %s and %s (pid 12, attempt 2)", j.handled, id1, id2)
	}
	if j.handled[1].line != 3 {
		t.Errorf("the record after the torn one is record %d, want 3", j.handled[1].line)
	}
	if len(j.produced) != 1 || j.produced[0] != (produced{id: id3, key: "key-03", seq: 7}) {
		t.Errorf("produced = %+v", j.produced)
	}
	if len(j.overlaps) != 1 {
		t.Errorf("overlaps = %q, want one", j.overlaps)
	}
	if len(j.torn) != 2 {
		t.Errorf("torn = %q, want two", j.torn)
	}
}
