package features

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func hash(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func item(name, content string, dim, grid int) Item {
	it := Item{Name: name, Hash: hash(content), Pooled: make([]float32, dim), Grid: make([]float32, grid)}
	for i := range it.Pooled {
		it.Pooled[i] = float32(len(content)) + float32(i)/10
	}
	for i := range it.Grid {
		it.Grid[i] = float32(i%600) / 100 // in [0, 6) like ReLU6 outputs
	}
	return it
}

func TestStoreAddReopenResume(t *testing.T) {
	dir := Dir(t.TempDir(), "enc-1")
	m := Manifest{Encoder: "enc-1", Dim: 4, Grid: []int{2, 2, 3}}
	s, err := Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	a, b := item("a.jpg", "AAAA", 4, 12), item("b.jpg", "BB", 4, 12)
	dup := item("copy-of-a.jpg", "AAAA", 4, 12)
	if err := s.Add([]Item{a, b, dup}); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || !slices.Equal(s.Names(), []string{"a.jpg", "b.jpg", "copy-of-a.jpg"}) {
		t.Fatalf("len %d names %v; identical content must share a record", s.Len(), s.Names())
	}
	s.Close()

	// Simulate an interruption in the next batch: data written, index line cut short.
	c := item("c.jpg", "CCC", 4, 12)
	f, _ := os.OpenFile(filepath.Join(dir, pooledFile), os.O_APPEND|os.O_WRONLY, 0)
	f.Write(make([]byte, 16))
	f.Close()
	f, _ = os.OpenFile(filepath.Join(dir, indexFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("2\t" + c.Hash[:10])
	f.Close()

	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 {
		t.Fatalf("reader sees %d records, want 2 (the partial one ignored)", r.Len())
	}
	got, err := r.LoadPooled([]string{"b.jpg", "copy-of-a.jpg"})
	if err != nil || !slices.Equal(got, append(slices.Clone(b.Pooled), a.Pooled...)) {
		t.Fatalf("LoadPooled = %v, %v", got, err)
	}
	g := make([]float32, 12)
	if err := r.Grid(g, "b.jpg"); err != nil {
		t.Fatal(err)
	}
	for i := range g {
		if math.Abs(float64(g[i]-b.Grid[i])) > 0.003 {
			t.Fatalf("grid[%d] = %g, want %g within float16 precision", i, g[i], b.Grid[i])
		}
	}
	if _, err := r.LoadPooled([]string{"a.jpg", "nope.jpg"}); err == nil || !strings.Contains(err.Error(), "1 of 2 images have no features") {
		t.Errorf("missing name: %v", err)
	}
	r.Close()

	// Resume: Create cuts the leftovers, then the batch is redone.
	s, err = Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	if s.Has(c.Hash) || !s.Has(a.Hash) {
		t.Fatal("resume: wrong records")
	}
	// b.jpg changed on disk: a new record, and the name now maps to it.
	b2 := item("b.jpg", "B2B2B2B2B", 4, 12)
	if err := s.Add([]Item{c, b2}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Len() != 4 {
		t.Fatalf("%d records, want 4", r.Len())
	}
	for _, it := range []Item{a, c, b2} {
		p, err := r.Pooled(it.Name)
		if err != nil || !slices.Equal(p, it.Pooled) {
			t.Errorf("%s: pooled %v, %v; want %v", it.Name, p, err, it.Pooled)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, pooledFile)); st.Size() != 4*4*4 {
		t.Errorf("pooled.f32 is %d bytes, want %d (no leftover from the interruption)", st.Size(), 4*4*4)
	}
}

func TestStoreRefusesOtherEncoder(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(dir, Manifest{Encoder: "enc-1", Dim: 4})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Create(dir, Manifest{Encoder: "enc-2", Dim: 4}); err == nil || !strings.Contains(err.Error(), "holds features of encoder enc-1") {
		t.Errorf("other encoder: %v", err)
	}
	if _, err := Create(dir, Manifest{Encoder: "enc-1", Dim: 4, Grid: []int{1, 1, 4}}); err == nil ||
		err.Error() != "features: "+dir+" holds pooled features only (extracted without --grid), and a store's records all have a grid or none. It is a cache: delete the folder and run this again to extract both, or pass another --out (and that folder to train and eval as --features)" {
		t.Errorf("a store without grids accepted a request for grids: %v", err)
	}
	gridDir := t.TempDir()
	if s, err = Create(gridDir, Manifest{Encoder: "enc-1", Dim: 4, Grid: []int{1, 1, 4}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Create(gridDir, Manifest{Encoder: "enc-1", Dim: 4}); err == nil ||
		err.Error() != "features: "+gridDir+" holds features with grids: extract into it with --grid too, or pass another --out" {
		t.Errorf("a store with grids accepted records without: %v", err)
	}
	if _, err := Create(dir, Manifest{Encoder: "enc-1", Dim: 4, Mirrored: true}); err == nil || !strings.Contains(err.Error(), "mirrored false), not enc-1 (dim 4, grid [], mirrored true)") {
		t.Errorf("a store of the photos accepted mirrored features: %v", err)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "run `captioner extract`") {
		t.Errorf("empty folder: %v", err)
	}
}

func TestStoreRejectsDamagedIndex(t *testing.T) {
	dir := t.TempDir()
	s, _ := Create(dir, Manifest{Encoder: "e", Dim: 2})
	s.Add([]Item{item("a.jpg", "A", 2, 0)})
	s.Close()
	os.WriteFile(filepath.Join(dir, indexFile), []byte("5\t"+hash("A")+"\ta.jpg\n"), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "record 5") {
		t.Errorf("record out of order: %v", err)
	}
	os.WriteFile(filepath.Join(dir, indexFile), []byte("0\tzz\ta.jpg\n"), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("bad hash: %v", err)
	}
	os.WriteFile(filepath.Join(dir, indexFile), []byte("0\t"+hash("A")+"\ta.jpg\n1\t"+hash("B")+"\tb.jpg\n"), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("index beyond data: %v", err)
	}
}

func TestLoadGrid(t *testing.T) {
	dir := Dir(t.TempDir(), "enc-1")
	s, err := Create(dir, Manifest{Encoder: "enc-1", Dim: 4, Grid: []int{2, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := item("a.jpg", "AAAA", 4, 12), item("b.jpg", "BB", 4, 12)
	for i := range b.Grid {
		b.Grid[i] = 5.5 - float32(i)/4 // distinct from a's
	}
	if err := s.Add([]Item{a, b}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadGrid([]string{"b.jpg", "a.jpg"})
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(b.Grid), a.Grid...)
	if len(got) != len(want) {
		t.Fatalf("LoadGrid returned %d values, want %d", len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 0.003 {
			t.Fatalf("grid value %d = %g, want %g within float16 precision", i, got[i], want[i])
		}
	}
	if _, err := s.LoadGrid([]string{"a.jpg", "nope.jpg"}); err == nil || !strings.Contains(err.Error(), "1 of 2 images have no features") {
		t.Errorf("missing name: %v", err)
	}
	s.Close()

	dir2 := Dir(t.TempDir(), "enc-1")
	p, err := Create(dir2, Manifest{Encoder: "enc-1", Dim: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.LoadGrid([]string{"a.jpg"})
	if want := "features: " + dir2 + " keeps no grids (extracted without --grid), which an attention model reads. It is a cache: delete the folder and run captioner extract --grid with the options that made it, or extract --grid with another --out and pass that folder as --features"; err == nil || err.Error() != want {
		t.Errorf("pooled-only store: %v, want %s", err, want)
	}
}

// TestDefaultRootPerDataset: the assets' Flickr8k keeps features/flickr8k; a
// dataset of one's own gets a root of its own, named after it and told apart
// from another of the same name by its path.
func TestDefaultRootPerDataset(t *testing.T) {
	t.Setenv("CAPTIONER_CACHE", "/cache")
	for _, tc := range []struct{ data, want string }{
		{"", "/cache/features/flickr8k"},
		{"/data/a/mydata", "/cache/features/mydata-"},
		{"/data/a/dataset_coco.json", "/cache/features/dataset_coco-"},
	} {
		got, err := DefaultRoot(tc.data)
		n := len(tc.want)
		if tc.data != "" {
			n += 8 // the path's hash
		}
		if err != nil || !strings.HasPrefix(got, tc.want) || len(got) != n {
			t.Errorf("DefaultRoot(%q) = %q, %v; want %s plus 8 hex digits for a dataset", tc.data, got, err, tc.want)
		}
	}
	a, _ := DefaultRoot("/data/a/mydata")
	b, _ := DefaultRoot("/data/b/mydata")
	if a == b {
		t.Errorf("two datasets named mydata share the root %s", a)
	}
}

// TestOneWriterAtATime: a second Create of a store another writer holds is
// refused, saying what holds it; once the first closes, it goes ahead.
func TestOneWriterAtATime(t *testing.T) {
	dir := Dir(t.TempDir(), "enc-1")
	m := Manifest{Encoder: "enc-1", Dim: 4}
	first, err := Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	want := "features: " + dir + " is being written by another process (another captioner extract, or train --finetune-blocks caching activations); wait for it to end, or write elsewhere with --out"
	if _, err := Create(dir, m); err == nil || err.Error() != want {
		t.Fatalf("a second writer: %v, want %q", err, want)
	}
	if err := first.Add([]Item{item("a.jpg", "AAAA", 4, 0)}); err != nil {
		t.Fatal(err)
	}
	first.Close()
	second, err := Create(dir, m)
	if err != nil {
		t.Fatalf("after the first writer closed: %v", err)
	}
	defer second.Close()
	if second.Len() != 1 {
		t.Errorf("the second writer sees %d records, want the first's 1", second.Len())
	}
}

// TestHasWhileAdding: extract asks Has of the next batch while Add stores the
// previous one; before Has took a lock, that was a concurrent map read and
// write, which the Go runtime ends the process for.
func TestHasWhileAdding(t *testing.T) {
	s, err := Create(Dir(t.TempDir(), "enc-1"), Manifest{Encoder: "enc-1", Dim: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // asks until the adding ends
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				s.Has(hash(strconv.Itoa(i % 300)))
			}
		}
	}()
	for i := range 300 {
		if err := s.Add([]Item{item(strconv.Itoa(i)+".jpg", strconv.Itoa(i), 4, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
	if !s.Has(hash("299")) {
		t.Error("the last item added is not in the store")
	}
}

// TestDamagedManifestSaysWhatToDo: an empty manifest (a run killed while
// writing it) is reported with the remedy, for readers and writers alike.
func TestDamagedManifestSaysWhatToDo(t *testing.T) {
	dir := Dir(t.TempDir(), "enc-1")
	s, err := Create(dir, Manifest{Encoder: "enc-1", Dim: 4})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, manifestFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want := "features: " + filepath.Join(dir, manifestFile) + " is damaged (unexpected end of JSON input): delete the folder " + dir + " and run captioner extract again"
	if _, err := Open(dir); err == nil || err.Error() != want {
		t.Errorf("Open: %v, want %q", err, want)
	}
	if _, err := Create(dir, Manifest{Encoder: "enc-1", Dim: 4}); err == nil || err.Error() != want {
		t.Errorf("Create: %v, want %q", err, want)
	}
}
