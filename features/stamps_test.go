package features

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStamps: the stamps extract gives its items are kept per name across
// reopening, a changed one replaces the old (the last line of a name holds),
// an unchanged one adds no line, items without one (zero) leave a name's
// alone, and a partial last line (an interrupted write) is passed over and
// cut before the next append.
func TestStamps(t *testing.T) {
	dir := Dir(t.TempDir(), "enc-1")
	m := Manifest{Encoder: "enc-1", Dim: 2}
	a, b := item("a.jpg", "A", 2, 0), item("b.jpg", "B", 2, 0)
	a.Stamp, b.Stamp = Stamp{Size: 10, ModTime: 1000}, Stamp{Size: 20, ModTime: 2000}
	s := filled(t, dir, m, a, b)
	s.Close()
	lines := func() []string {
		raw, err := os.ReadFile(filepath.Join(dir, stampsFile))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	}

	s, err := Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	a.Stamp = Stamp{Size: 11, ModTime: 1500} // a.jpg replaced: new content, new stamp
	a.Hash = hash("A2")
	unstamped := item("b.jpg", "B", 2, 0) // zero stamp: b.jpg's stays
	if err := s.Add([]Item{a, b, unstamped}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := lines(); len(got) != 3 || got[2] != "11\t1500\ta.jpg" {
		t.Fatalf("stamps file %q, want the first two lines and a.jpg's new one", got)
	}

	f, err := os.OpenFile(filepath.Join(dir, stampsFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("99\t9") // cut short by a crash
	f.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Stamp{"a.jpg": {11, 1500}, "b.jpg": {20, 2000}} {
		if got, ok := s.Stamp(name); !ok || got != want {
			t.Errorf("Stamp(%s) = %v, %v; want %v", name, got, ok, want)
		}
	}
	if _, ok := s.Stamp("c.jpg"); ok {
		t.Error("Stamp of a name without one: found")
	}
	s.Close()
	s, err = Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	c := item("c.jpg", "C", 2, 0)
	c.Stamp = Stamp{Size: 30, ModTime: 3000}
	if err := s.Add([]Item{c}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := lines(); len(got) != 4 || got[3] != "30\t3000\tc.jpg" {
		t.Errorf("after a partial line and an append: %q, want the partial line cut", got)
	}
}
