package features

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRegions: the number of grid cells is rows times columns, for square
// and non-square grids alike, and 0 without a (G, G, F) grid.
func TestRegions(t *testing.T) {
	for _, c := range []struct {
		grid []int
		want int
	}{{[]int{7, 7, 1280}, 49}, {[]int{2, 3, 5}, 6}, {nil, 0}, {[]int{7, 7}, 0}} {
		if got := (Manifest{Grid: c.grid}).Regions(); got != c.want {
			t.Errorf("Regions of grid %v = %d, want %d", c.grid, got, c.want)
		}
	}
}

// TestCreateRefusesOtherShapes: a store is reopened for writing only with the
// manifest it was made with: another feature length or grid shape would lay
// records out differently from those already there; and a manifest without an
// encoder ID or a positive length is refused before anything is written.
func TestCreateRefusesOtherShapes(t *testing.T) {
	dir := t.TempDir()
	filled(t, dir, Manifest{Encoder: "enc-1", Dim: 4, Grid: []int{1, 1, 4}}).Close()
	for _, c := range []struct {
		m    Manifest
		want string
	}{
		{Manifest{Encoder: "enc-1", Dim: 8, Grid: []int{1, 1, 4}}, "holds features of encoder enc-1 (dim 4, grid [1 1 4], mirrored false), not enc-1 (dim 8, grid [1 1 4], mirrored false)"},
		{Manifest{Encoder: "enc-1", Dim: 4, Grid: []int{2, 2, 4}}, "holds features of encoder enc-1 (dim 4, grid [1 1 4], mirrored false), not enc-1 (dim 4, grid [2 2 4], mirrored false)"},
		// Another photos' store (mirrored) is named as such, not as a grid mismatch.
		{Manifest{Encoder: "enc-1", Dim: 4, Mirrored: true}, "holds features of encoder enc-1 (dim 4, grid [1 1 4], mirrored false), not enc-1 (dim 4, grid [], mirrored true)"},
	} {
		if _, err := Create(dir, c.m); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Create with %+v: %v, want it to say %q", c.m, err, c.want)
		}
	}
	for _, m := range []Manifest{{Dim: 4}, {Encoder: "enc-1"}, {Encoder: "enc-1", Dim: -1}} {
		d := filepath.Join(t.TempDir(), "store")
		if _, err := Create(d, m); err == nil || !strings.Contains(err.Error(), "features: manifest needs an encoder ID and a positive dim") {
			t.Errorf("Create with %+v: %v", m, err)
		}
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("Create with %+v made the folder (%v)", m, err)
		}
	}
}

// TestOpenRejectsOtherFormat: a store of another layout version is not read
// as this one.
func TestOpenRejectsOtherFormat(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(dir, Manifest{Encoder: "e", Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, manifestFile), []byte(`{"format": "captioner-features/0", "encoder": "e", "dim": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	want := `features: ` + dir + `: format "captioner-features/0"; want format "captioner-features/1" (re-run captioner extract into a new folder)`
	if _, err := Open(dir); err == nil || err.Error() != want {
		t.Errorf("Open: %v, want %q", err, want)
	}
	// Sizes no store has are damage: a negative or huge one panicked
	// allocating its records.
	for _, c := range []struct{ sizes, why string }{
		{`"dim": 0`, "dim 0 is outside 1..1048576"},
		{`"dim": 4611686018427387904`, "dim 4611686018427387904 is outside 1..1048576"},
		{`"dim": 2, "grid": [7, 7, -1280]`, "grid [7 7 -1280]: rows and columns must be in 1..1024, channels in 1..65536"},
		{`"dim": 2, "grid": [4611686018427387904, 1, 2]`, "grid [4611686018427387904 1 2]: rows and columns must be in 1..1024, channels in 1..65536"},
		{`"dim": 2, "grid": [7, 7]`, "grid [7 7] is not [rows, columns, channels]"},
		{`"dim": 2, "grid": [7, -1, 1280]`, "grid [7 -1 1280]: rows and columns must be in 1..1024, channels in 1..65536"},
		{`"dim": 2, "grid": [7, 1025, 2]`, "grid [7 1025 2]: rows and columns must be in 1..1024, channels in 1..65536"},
	} {
		if err := os.WriteFile(filepath.Join(dir, manifestFile), []byte(`{"format": "captioner-features/1", "encoder": "e", `+c.sizes+`}`), 0o644); err != nil {
			t.Fatal(err)
		}
		want := "features: " + dir + ": the manifest is damaged: " + c.why + "; delete the folder and run captioner extract again"
		if _, err := Open(dir); err == nil || err.Error() != want {
			t.Errorf("Open of %s: %v, want %q", c.sizes, err, want)
		}
	}
}

// TestIndexMustFollowRecords: an index line that maps a name to another
// record's data, or makes a second record of one content hash, or names
// nothing, is damage, not a store.
func TestIndexMustFollowRecords(t *testing.T) {
	dir := t.TempDir()
	s := filled(t, dir, Manifest{Encoder: "e", Dim: 2}, item("a.jpg", "A", 2, 0), item("b.jpg", "BB", 2, 0))
	s.Close()
	a, b := hash("A"), hash("BB")
	for _, c := range []struct{ index, want string }{
		{"0\t" + a + "\ta.jpg\n0\t" + b + "\tb.jpg\n", "line 2: record 0 with hash " + b + " does not follow the records before it"},
		{"0\t" + a + "\ta.jpg\n1\t" + a + "\tb.jpg\n", "line 2: record 1 with hash " + a + " does not follow the records before it"},
		{"0\t" + a + "\t\n", "line 1 is malformed"},
	} {
		if err := os.WriteFile(filepath.Join(dir, indexFile), []byte(c.index), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("index %q: %v, want it to say %q", c.index, err, c.want)
		}
	}
}

// TestGridFileShorterThanIndex: a grid file missing the last record's grid
// is reported, not read past its end; one longer than the index (an
// interrupted run) is cut back when the store is reopened for writing.
func TestGridFileShorterThanIndex(t *testing.T) {
	dir := t.TempDir()
	m := Manifest{Encoder: "e", Dim: 2, Grid: []int{2, 2, 3}}
	s := filled(t, dir, m, item("a.jpg", "A", 2, 12), item("b.jpg", "BB", 2, 12))
	s.Close()
	path := filepath.Join(dir, gridFile)
	if err := os.Truncate(path, 2*2*12+100); err != nil { // leftovers of a third record
		t.Fatal(err)
	}
	filled(t, dir, m).Close()
	if st, err := os.Stat(path); err != nil || st.Size() != 2*2*12 {
		t.Fatalf("grid.f16 after reopening: %v, %v; want %d bytes (the leftovers cut)", st.Size(), err, 2*2*12)
	}
	if err := os.Truncate(path, 2*2*12-2); err != nil {
		t.Fatal(err)
	}
	want := "features: grid.f16 has 46 bytes for 2 records; the store is damaged: delete " + dir + " and re-run captioner extract"
	if _, err := Open(dir); err == nil || err.Error() != want {
		t.Errorf("Open: %v, want %q", err, want)
	}
}

// TestAddRejectsBadItems: an item whose name would break its index line, whose
// hash is not a SHA-256, or whose grid is of the wrong length is refused
// before anything is written.
func TestAddRejectsBadItems(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(dir, Manifest{Encoder: "e", Dim: 2, Grid: []int{2, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tab := item("a\tb.jpg", "A", 2, 12)
	short := item("c.jpg", "C", 2, 12)
	short.Hash = short.Hash[:32]
	for _, c := range []struct {
		it   Item
		want string
	}{
		{tab, `features: bad item name "a\tb.jpg" or hash "` + tab.Hash + `"`},
		{item("a\nb.jpg", "A", 2, 12), `features: bad item name "a\nb.jpg"`},
		{short, `features: bad item name "c.jpg" or hash "` + short.Hash + `"`},
		{item("d.jpg", "D", 2, 11), "features: d.jpg: 2 pooled and 11 grid values, want 2 and 12"},
		{withValue(item("e.jpg", "E", 2, 12), false, float32(math.NaN())), "features: e.jpg: features that are not finite (NaN or Inf) are not stored"},
		{withValue(item("f.jpg", "F", 2, 12), true, float32(math.Inf(1))), "features: f.jpg: features that are not finite (NaN or Inf) are not stored"},
	} {
		if err := s.Add([]Item{c.it}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(%q): %v, want %q", c.it.Name, err, c.want)
		}
	}
	if s.Len() != 0 {
		t.Errorf("%d records after refused items, want 0", s.Len())
	}
	if st, err := os.Stat(filepath.Join(dir, indexFile)); err != nil || st.Size() != 0 {
		t.Errorf("index.tsv after refused items: %v, %v; want it empty", st.Size(), err)
	}
}

// TestPooledIsCapped: appending to one record's features must not write over
// the next record's.
func TestPooledIsCapped(t *testing.T) {
	s, err := Create(t.TempDir(), Manifest{Encoder: "e", Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := item("a.jpg", "A", 2, 0), item("b.jpg", "BB", 2, 0)
	if err := s.Add([]Item{a, b}); err != nil {
		t.Fatal(err)
	}
	p, err := s.Pooled("a.jpg")
	if err != nil {
		t.Fatal(err)
	}
	_ = append(p, float32(math.Inf(1)))
	if q, _ := s.Pooled("b.jpg"); q[0] != b.Pooled[0] {
		t.Errorf("b.jpg's first feature is %g after appending to a.jpg's, want %g", q[0], b.Pooled[0])
	}
}

// TestMissingNamesMessage: a load of names without features lists the first
// three of them.
func TestMissingNamesMessage(t *testing.T) {
	dir := t.TempDir()
	s := filled(t, dir, Manifest{Encoder: "e", Dim: 2}, item("a.jpg", "A", 2, 0))
	defer s.Close()
	want := "features: 4 of 5 images have no features in " + dir + " (w.jpg, x.jpg, y.jpg and 1 more)"
	_, err := s.LoadPooled([]string{"a.jpg", "w.jpg", "x.jpg", "y.jpg", "z.jpg"})
	if err == nil || err.Error() != want {
		t.Errorf("LoadPooled: %v, want %q", err, want)
	}
	var me *MissingError
	if !errors.As(err, &me) || !slices.Equal(me.Missing, []string{"w.jpg", "x.jpg", "y.jpg", "z.jpg"}) {
		t.Errorf("LoadPooled: %#v, want a *MissingError of the 4 names", err)
	}
}

// TestGridOfPooledOnlyStore: Grid on a store without grids says so.
func TestGridOfPooledOnlyStore(t *testing.T) {
	dir := t.TempDir()
	s := filled(t, dir, Manifest{Encoder: "e", Dim: 2}, item("a.jpg", "A", 2, 0))
	defer s.Close()
	want := "features: " + dir + " keeps no grids (extracted without --grid), which an attention model reads. It is a cache: delete the folder and run captioner extract --grid with the options that made it, or extract --grid with another --out and pass that folder as --features"
	if err := s.Grid(nil, "a.jpg"); err == nil || err.Error() != want {
		t.Errorf("Grid: %v, want %q", err, want)
	}
}

// filled creates a store in dir with manifest m and adds items to it.
func filled(t *testing.T, dir string, m Manifest, items ...Item) *Store {
	t.Helper()
	s, err := Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add(items); err != nil {
		t.Fatal(err)
	}
	return s
}

// withValue is it with its last pooled value (or grid value) set to v.
func withValue(it Item, grid bool, v float32) Item {
	if grid {
		it.Grid[len(it.Grid)-1] = v
	} else {
		it.Pooled[len(it.Pooled)-1] = v
	}
	return it
}

// TestDamagedValuesAreNamed: a NaN or Inf in a store's files (the encoder's
// features are ReLU6 outputs) trained a model into NaN gradients and failed
// eval's JSON without naming the store; reading it names the image.
func TestDamagedValuesAreNamed(t *testing.T) {
	dir := t.TempDir()
	m := Manifest{Encoder: "e", Dim: 2, Grid: []int{2, 2, 3}}
	filled(t, dir, m, item("a.jpg", "A", 2, 12), item("b.jpg", "B", 2, 12)).Close()
	grid, err := os.OpenFile(filepath.Join(dir, gridFile), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	grid.WriteAt([]byte{0x00, 0x7e}, 2*12+2*5) // a float16 NaN in b.jpg's grid
	grid.Close()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.LoadGrid([]string{"a.jpg", "b.jpg"})
	if want := "features: " + dir + ": the features of b.jpg (record 1) in grid.f16 are not finite (NaN or Inf): the store is damaged; delete the folder and run captioner extract again"; err == nil || err.Error() != want {
		t.Errorf("LoadGrid: %v, want %q", err, want)
	}
	s.Close()
	pooled, err := os.OpenFile(filepath.Join(dir, pooledFile), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	pooled.WriteAt([]byte{0, 0, 0x80, 0x7f}, 4) // +Inf, a.jpg's second value
	pooled.Close()
	_, err = Open(dir)
	if want := "features: " + dir + ": the features of a.jpg (record 0) in pooled.f32 are not finite (NaN or Inf): the store is damaged; delete the folder and run captioner extract again"; err == nil || err.Error() != want {
		t.Errorf("Open: %v, want %q", err, want)
	}
}

// A grids store without its grid file is damaged, not absent: the error
// wrapped fs.ErrNotExist, which train and eval tell as "run extract".
func TestMissingGridFileIsDamage(t *testing.T) {
	dir := t.TempDir()
	filled(t, dir, Manifest{Encoder: "e", Dim: 2, Grid: []int{2, 2, 3}}, item("a.jpg", "A", 2, 12)).Close()
	if err := os.Remove(filepath.Join(dir, gridFile)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if want := "features: " + dir + " has no grid.f16, though its manifest keeps grids: the store is damaged; delete the folder and run captioner extract again"; err == nil || err.Error() != want || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open: %v, want %q (not fs.ErrNotExist)", err, want)
	}
}

// The pooled file short by one value, not a whole record, is damage (a
// check off by a value had let Open read past its end and panic).
func TestPooledFileShortByAValue(t *testing.T) {
	dir := t.TempDir()
	filled(t, dir, Manifest{Encoder: "e", Dim: 2}, item("a.jpg", "A", 2, 0), item("b.jpg", "BB", 2, 0)).Close()
	if err := os.Truncate(filepath.Join(dir, pooledFile), 2*2*4-4); err != nil {
		t.Fatal(err)
	}
	want := "features: pooled.f32 has 12 bytes, but its index lists 2 records of 8 bytes; the store is damaged: delete " + dir + " and re-run captioner extract"
	if _, err := Open(dir); err == nil || err.Error() != want {
		t.Errorf("Open: %v, want %q", err, want)
	}
}

// A name added again with other content (its photo replaced) points at the
// new record, and is listed once, before and after reopening.
func TestRepointedNameIsListedOnce(t *testing.T) {
	dir := t.TempDir()
	m := Manifest{Encoder: "e", Dim: 2}
	s := filled(t, dir, m, item("a.jpg", "A", 2, 0))
	if err := s.Add([]Item{item("a.jpg", "BB", 2, 0)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !slices.Equal(r.Names(), []string{"a.jpg"}) || r.Len() != 2 {
		t.Errorf("names %q of %d records, want a.jpg once of 2", r.Names(), r.Len())
	}
	if got, err := r.Pooled("a.jpg"); err != nil || got[0] != 2 {
		t.Errorf("a.jpg loads %v (%v), want the new content's features (2, ...)", got, err)
	}
}

// The manifest's bounds, each at its limit and one past it.
func TestManifestBounds(t *testing.T) {
	for _, c := range []struct {
		m    Manifest
		want string // "" accepted
	}{
		{Manifest{Dim: maxDim}, ""},
		{Manifest{Dim: maxDim + 1}, "dim 1048577 is outside 1..1048576"},
		{Manifest{Dim: 1, Grid: []int{maxGridSide, 1, maxChannels}}, ""},
		{Manifest{Dim: 1, Grid: []int{1, 1, maxChannels + 1}}, "grid [1 1 65537]: rows and columns must be in 1..1024, channels in 1..65536"},
		{Manifest{Dim: 1, Grid: []int{1, maxGridSide + 1, 1}}, "grid [1 1025 1]: rows and columns must be in 1..1024, channels in 1..65536"},
	} {
		err := c.m.check()
		if got := fmt.Sprint(err); c.want == "" && err != nil || c.want != "" && got != c.want {
			t.Errorf("%+v: %v, want %q", c.m, err, c.want)
		}
	}
}
