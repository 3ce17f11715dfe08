package features

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/internal/atomicfile"
	"github.com/captioner/captioner/internal/dirlock"
	"github.com/captioner/captioner/internal/f16"
	"github.com/captioner/captioner/internal/listing"
)

// Format names the on-disk layout described in the package documentation.
const Format = "captioner-features/1"

// Manifest describes a store.
type Manifest struct {
	Format  string `json:"format"`
	Encoder string `json:"encoder"` // encoder.Config.ID of the encoder that made the features
	Dim     int    `json:"dim"`     // pooled feature length (1280)
	Grid    []int  `json:"grid"`    // grid shape (7, 7, 1280), or nil when grids are not kept
	// Mirrored marks the features of the photos flipped left to right
	// (extract --mirror), kept in MirroredDir of the photos' own store.
	Mirrored bool `json:"mirrored,omitempty"`
}

// Regions is the number of grid cells (7*7 = 49), 0 when no grids are kept.
func (m Manifest) Regions() int {
	if len(m.Grid) != 3 {
		return 0
	}
	return m.Grid[0] * m.Grid[1]
}

// Bounds on a manifest's sizes, beyond any encoder's (1280 features, a 7x7
// grid; fine-tuning's activations below block 0, 112x112x32 = 401,408 a
// photo, which 1 << 16 refused) and low enough that a damaged manifest is an
// error, not a record length that overflows or exhausts memory.
const (
	maxDim      = 1 << 20
	maxChannels = 1 << 16 // a grid's: 1024x1024 cells of them would already be 2^36 values
	maxGridSide = 1 << 10
)

// check refuses sizes no store can have.
func (m Manifest) check() error {
	if m.Dim < 1 || m.Dim > maxDim {
		return fmt.Errorf("dim %d is outside 1..%d", m.Dim, maxDim)
	}
	switch {
	case len(m.Grid) == 0:
		return nil
	case len(m.Grid) != 3:
		return fmt.Errorf("grid %v is not [rows, columns, channels]", m.Grid)
	case m.Grid[0] < 1 || m.Grid[0] > maxGridSide || m.Grid[1] < 1 || m.Grid[1] > maxGridSide || m.Grid[2] < 1 || m.Grid[2] > maxChannels:
		return fmt.Errorf("grid %v: rows and columns must be in 1..%d, channels in 1..%d", m.Grid, maxGridSide, maxChannels)
	}
	return nil
}

func (m Manifest) gridLen() int {
	if len(m.Grid) == 0 {
		return 0
	}
	n := 1
	for _, d := range m.Grid {
		n *= d
	}
	return n
}

// Item is one image's features, for Add.
type Item struct {
	Name   string    // file name in the dataset, e.g. 1000268201_693b08cb0e.jpg
	Hash   string    // hex SHA-256 of the image file's bytes
	Pooled []float32 // (Dim)
	Grid   []float32 // (G, G, F); ignored when the store keeps no grids
	Stamp  Stamp     // the photo file's size and time when read; zero: none recorded
}

// Store is a feature store. Its reading methods may be called concurrently;
// Add and Close may not run concurrently with anything else, but for Has
// (extract asks it of the next batch while the previous one is added).
type Store struct {
	dir     string
	man     Manifest
	gridLen int
	pooled  []float32 // (records, Dim), every record in memory
	hashes  []string  // record -> content hash
	hashMu  sync.RWMutex
	byHash  map[string]int // guarded by hashMu where Add writes it
	byName  map[string]int
	names   []string // in index order, each once
	grid    *os.File // nil without grids
	stamps  map[string]Stamp

	// Open for writing (Create) only:
	pooledW, indexW, stampsW *os.File
	lock                     *os.File // lockDir's
}

// DefaultRoot is where captioner extract puts the feature stores of dataset
// data (train.data) unless told otherwise, under assets.CacheDir:
// features/flickr8k for the assets' Flickr8k (data ""), and for a dataset of
// one's own features/NAME-HASH, NAME its folder's or file's name and HASH its
// absolute path's. Stores look features up by image name, and two datasets may
// name different photos alike.
func DefaultRoot(data string) (string, error) {
	cache, err := assets.CacheDir()
	if err != nil {
		return "", fmt.Errorf("features: %w; or pass the feature root explicitly", err)
	}
	name := "flickr8k"
	if data != "" {
		abs, err := filepath.Abs(data)
		if err != nil {
			return "", fmt.Errorf("features: %w", err)
		}
		sum := sha256.Sum256([]byte(abs))
		name = strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs)) + "-" + hex.EncodeToString(sum[:4])
	}
	return filepath.Join(cache, "features", name), nil
}

// Dir is the store folder of encoder ID encoderID under root.
func Dir(root, encoderID string) string { return filepath.Join(root, encoderID) }

// IsStore reports whether dir is a store (holds a manifest): a root given in
// its place is told apart from a root without the store.
func IsStore(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, manifestFile))
	return err == nil
}

// MirroredDir is the folder of the store of mirrored photos' features that
// belongs to the store in dir: a store of its own, keyed by the original
// files' hashes, so that the two never mix.
func MirroredDir(dir string) string { return filepath.Join(dir, "mirrored") }

const (
	manifestFile = "manifest.json"
	pooledFile   = "pooled.f32"
	gridFile     = "grid.f16"
	indexFile    = "index.tsv"
)

// Open opens the store in dir for reading. Records past the last complete index
// line (an interrupted extract) are ignored.
func Open(dir string) (*Store, error) {
	s, err := load(dir, false)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Create opens the store in dir for adding records, creating it when absent.
// An existing store must have manifest m (the same encoder and grid setting);
// data left by an interrupted run past its last complete index line is cut off.
func Create(dir string, m Manifest) (*Store, error) {
	m.Format = Format
	if m.Dim <= 0 || m.Encoder == "" {
		return nil, fmt.Errorf("features: manifest needs an encoder ID and a positive dim, got %+v", m)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s, err := create(dir, m)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// damagedManifest is the error for a manifest that does not parse (a run
// killed while writing it, before it was written atomically).
func damagedManifest(dir string, err error) error {
	return fmt.Errorf("features: %s is damaged (%w): delete the folder %s and run captioner extract again", filepath.Join(dir, manifestFile), err, dir)
}

// lockDir takes the write lock of the store in dir (dirlock), which no other
// process can take while this one holds it: two writers appending to one store
// would write over each other's records (and one photo's name could end up
// on another's features). Close releases it; so does the process's end.
func lockDir(dir string) (*os.File, error) {
	f, err := dirlock.Lock(dir)
	if errors.Is(err, dirlock.ErrHeld) {
		return nil, fmt.Errorf("features: %s is being written by another process (another captioner extract, or train --finetune-blocks caching activations); wait for it to end, or write elsewhere with --out", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	return f, nil
}

// create is Create once the store's lock is held.
func create(dir string, m Manifest) (*Store, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		mb, _ := json.MarshalIndent(m, "", " ")
		if err := atomicfile.WriteFile(filepath.Join(dir, manifestFile), append(mb, '\n')); err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("features: %w", err)
	default:
		var have Manifest
		if err := json.Unmarshal(b, &have); err != nil {
			return nil, damagedManifest(dir, err)
		}
		sameBut := have.Encoder == m.Encoder && have.Dim == m.Dim && have.Mirrored == m.Mirrored
		switch {
		case sameBut && len(have.Grid) == 0 && len(m.Grid) > 0:
			return nil, fmt.Errorf("features: %s holds pooled features only (extracted without --grid), and a store's records all have a grid or none. It is a cache: delete the folder and run this again to extract both, or pass another --out (and that folder to train and eval as --features)", dir)
		case sameBut && len(have.Grid) > 0 && len(m.Grid) == 0:
			return nil, fmt.Errorf("features: %s holds features with grids: extract into it with --grid too, or pass another --out", dir)
		}
		if have.Encoder != m.Encoder || have.Dim != m.Dim || !slices.Equal(have.Grid, m.Grid) || have.Mirrored != m.Mirrored {
			return nil, fmt.Errorf("features: %s holds features of encoder %s (dim %d, grid %v, mirrored %v), not %s (dim %d, grid %v, mirrored %v); use another folder or delete it",
				dir, have.Encoder, have.Dim, have.Grid, have.Mirrored, m.Encoder, m.Dim, m.Grid, m.Mirrored)
		}
	}
	return load(dir, true)
}

func load(dir string, write bool) (*Store, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("features: %w (run `captioner extract` to make the store)", err)
	}
	s := &Store{dir: dir, byHash: map[string]int{}, byName: map[string]int{}}
	if err := json.Unmarshal(b, &s.man); err != nil {
		return nil, damagedManifest(dir, err)
	}
	if s.man.Format != Format {
		return nil, fmt.Errorf("features: %s: format %q; want format %q (re-run captioner extract into a new folder)", dir, s.man.Format, Format)
	}
	if err := s.man.check(); err != nil {
		return nil, fmt.Errorf("features: %s: the manifest is damaged: %w; delete the folder and run captioner extract again", dir, err)
	}
	s.gridLen = s.man.gridLen()
	indexBytes, err := readOrEmpty(filepath.Join(dir, indexFile))
	if err != nil {
		return nil, err
	}
	// A partial last line is an interrupted write: not part of the store.
	complete := bytes.LastIndexByte(indexBytes, '\n') + 1
	if err := s.parseIndex(indexBytes[:complete]); err != nil {
		return nil, err
	}
	n := len(s.hashes)
	raw, err := readOrEmpty(filepath.Join(dir, pooledFile))
	if err != nil {
		return nil, err
	}
	if len(raw) < n*s.man.Dim*4 {
		return nil, fmt.Errorf("features: %s has %d bytes, but its index lists %d records of %d bytes; the store is damaged: delete %s and re-run captioner extract",
			pooledFile, len(raw), n, s.man.Dim*4, dir)
	}
	s.pooled = make([]float32, n*s.man.Dim)
	for i := range s.pooled {
		v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		if notFinite(v) {
			return nil, s.damagedRecord(i/s.man.Dim, pooledFile)
		}
		s.pooled[i] = v
	}
	stampsLen, err := s.readStamps()
	if err != nil {
		return nil, err
	}
	if write {
		if err := s.openWriters(complete, int64(n), stampsLen); err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.gridLen > 0 {
		flag := os.O_RDONLY
		if write {
			flag = os.O_RDWR | os.O_CREATE
		}
		if s.grid, err = os.OpenFile(filepath.Join(dir, gridFile), flag, 0o644); errors.Is(err, fs.ErrNotExist) {
			// Not the store's absence (fs.ErrNotExist), which callers tell
			// as "run extract": its manifest and index are there.
			s.Close()
			return nil, fmt.Errorf("features: %s has no %s, though its manifest keeps grids: the store is damaged; delete the folder and run captioner extract again", dir, gridFile)
		} else if err != nil {
			s.Close()
			return nil, fmt.Errorf("features: %w", err)
		}
		st, err := s.grid.Stat()
		if err == nil && st.Size() < int64(n*s.gridLen*2) {
			err = fmt.Errorf("%s has %d bytes for %d records; the store is damaged: delete %s and re-run captioner extract", gridFile, st.Size(), n, dir)
		}
		if err == nil && write {
			err = s.grid.Truncate(int64(n * s.gridLen * 2))
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("features: %w", err)
		}
	}
	return s, nil
}

func readOrEmpty(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	return b, nil
}

// parseIndex reads complete "<record>\t<hash>\t<name>" lines. A line names either
// the next new record or an existing one with the same hash.
func (s *Store) parseIndex(b []byte) error {
	for ln, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		var rec int
		var err error
		if len(f) == 3 {
			rec, err = strconv.Atoi(f[0])
		}
		switch {
		case len(f) != 3 || err != nil || !isHash(f[1]) || f[2] == "":
			return fmt.Errorf("features: %s line %d is malformed: %q; delete %s and re-run captioner extract", indexFile, ln+1, line, s.dir)
		case rec == len(s.hashes) && !s.has(f[1]):
			s.hashes = append(s.hashes, f[1])
			s.byHash[f[1]] = rec
		case rec < len(s.hashes) && s.hashes[rec] == f[1]:
		default:
			return fmt.Errorf("features: %s line %d: record %d with hash %s does not follow the records before it; delete %s and re-run captioner extract", indexFile, ln+1, rec, f[1], s.dir)
		}
		if _, seen := s.byName[f[2]]; !seen {
			s.names = append(s.names, f[2])
		}
		s.byName[f[2]] = rec
	}
	return nil
}

func (s *Store) has(hash string) bool {
	s.hashMu.RLock()
	defer s.hashMu.RUnlock()
	_, ok := s.byHash[hash]
	return ok
}

func isHash(h string) bool {
	b, err := hex.DecodeString(h)
	return err == nil && len(b) == 32
}

// openWriters opens pooled.f32, index.tsv and stamps.tsv for appending,
// cutting the first two back to the indexed records and the stamps to their
// complete lines (stampsLen) first.
func (s *Store) openWriters(indexLen int, records int64, stampsLen int) error {
	for _, t := range []struct {
		f    **os.File
		name string
		len  int64
	}{{&s.indexW, indexFile, int64(indexLen)}, {&s.pooledW, pooledFile, records * int64(s.man.Dim) * 4}, {&s.stampsW, stampsFile, int64(stampsLen)}} {
		f, err := os.OpenFile(filepath.Join(s.dir, t.name), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("features: %w", err)
		}
		*t.f = f
		if err := f.Truncate(t.len); err != nil {
			return fmt.Errorf("features: %w", err)
		}
		if _, err := f.Seek(t.len, 0); err != nil {
			return fmt.Errorf("features: %w", err)
		}
	}
	return nil
}

// Manifest describes the store.
func (s *Store) Manifest() Manifest { return s.man }

// Path is the store's folder.
func (s *Store) Path() string { return s.dir }

// Len is the number of records (distinct image contents).
func (s *Store) Len() int { return len(s.hashes) }

// Names lists every image name in the store, in the order first added.
func (s *Store) Names() []string { return slices.Clone(s.names) }

// Has reports whether the store holds features for content hash hash.
func (s *Store) Has(hash string) bool { return s.has(hash) }

// Hash returns the content hash recorded for an image name.
func (s *Store) Hash(name string) (string, bool) {
	r, ok := s.byName[name]
	if !ok {
		return "", false
	}
	return s.hashes[r], true
}

func (s *Store) record(name string) (int, error) {
	r, ok := s.byName[name]
	if !ok {
		return 0, fmt.Errorf("features: no features for %s in %s; run captioner extract", name, s.dir)
	}
	return r, nil
}

// Pooled returns the (Dim) pooled features of image name. The slice aliases the
// store's memory: do not modify it.
func (s *Store) Pooled(name string) ([]float32, error) {
	r, err := s.record(name)
	if err != nil {
		return nil, err
	}
	return s.pooled[r*s.man.Dim : (r+1)*s.man.Dim : (r+1)*s.man.Dim], nil
}

// LoadPooled returns the pooled features of names, (len(names), Dim) in one flat
// slice, for training. It fails listing the missing names, if any.
func (s *Store) LoadPooled(names []string) ([]float32, error) {
	d := s.man.Dim
	out := make([]float32, len(names)*d)
	return out, s.loadEach(names, func(i, r int, _ string) error {
		copy(out[i*d:(i+1)*d], s.pooled[r*d:(r+1)*d])
		return nil
	})
}

// LoadGrid returns the grids of names, (len(names), G*G*F) in one flat slice of
// float32, for training an attention decoder: image i's region (y, x) is the F
// values at (i*G*G + y*G + x)*F. It fails when the store keeps no grids, and
// lists the missing names, if any.
func (s *Store) LoadGrid(names []string) ([]float32, error) {
	if s.gridLen == 0 {
		return nil, s.noGrids()
	}
	g := s.gridLen
	out := make([]float32, len(names)*g)
	return out, s.loadEach(names, func(i, _ int, name string) error {
		return s.Grid(out[i*g:(i+1)*g], name)
	})
}

// loadEach calls load with each name's position and record, after checking
// that every name has one (HasNames).
func (s *Store) loadEach(names []string, load func(i, record int, name string) error) error {
	if err := s.HasNames(names); err != nil {
		return err
	}
	for i, n := range names {
		if err := load(i, s.byName[n], n); err != nil {
			return err
		}
	}
	return nil
}

// HasNames checks that the store has features of every name: a
// *MissingError lists those it has not.
func (s *Store) HasNames(names []string) error {
	var missing []string
	for _, n := range names {
		if _, ok := s.byName[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return &MissingError{Dir: s.dir, Missing: missing, Of: len(names)}
	}
	return nil
}

// MissingError is a load of names that the store has no features of. What to
// do depends on why, which the caller knows: extract was not run on those
// photos, or skipped them (a file that is not there or cannot be read).
type MissingError struct {
	Dir     string   // the store
	Missing []string // the names without features, in the order asked
	Of      int      // how many names the load asked for
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("features: %d of %d images have no features in %s (%s)", len(e.Missing), e.Of, e.Dir, listing.First(e.Missing, 3))
}

func (s *Store) noGrids() error {
	return fmt.Errorf("features: %s keeps no grids (extracted without --grid), which an attention model reads. It is a cache: delete the folder and run captioner extract --grid with the options that made it, or extract --grid with another --out and pass that folder as --features", s.dir)
}

// Grid writes the grid of image name into dst (len G*G*F), converted to float32.
func (s *Store) Grid(dst []float32, name string) error {
	if s.gridLen == 0 {
		return s.noGrids()
	}
	if len(dst) != s.gridLen {
		panic(fmt.Sprintf("features: Grid dst has %d values, want %d", len(dst), s.gridLen))
	}
	r, err := s.record(name)
	if err != nil {
		return err
	}
	buf := make([]byte, 2*s.gridLen)
	if _, err := s.grid.ReadAt(buf, int64(r)*int64(len(buf))); err != nil {
		return fmt.Errorf("features: reading the grid of %s: %w", name, err)
	}
	for i := range dst {
		h := binary.LittleEndian.Uint16(buf[2*i:])
		if h&f16Special == f16Special {
			return s.damagedRecord(r, gridFile)
		}
		dst[i] = f16.ToFloat32(h)
	}
	return nil
}

// f16Special is the exponent of float16's Inf and NaN: all ones.
const f16Special = 0x7c00

func notFinite(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }

// damagedRecord is the error for record r, whose features in file are not
// finite: damage (the encoder's are ReLU6 outputs), which trained a model
// to NaN gradients and failed eval's JSON, without naming the store.
func (s *Store) damagedRecord(r int, file string) error {
	name := ""
	for _, n := range s.names {
		if s.byName[n] == r {
			name = n
			break
		}
	}
	return fmt.Errorf("features: %s: the features of %s (record %d) in %s are not finite (NaN or Inf): the store is damaged; delete the folder and run captioner extract again", s.dir, name, r, file)
}

// Add appends items: a new record for each content hash the store lacks, and an
// index line for each name not yet mapped to its hash. Data is synced before
// the index, so an interruption never indexes missing data.
func (s *Store) Add(items []Item) error {
	if s.indexW == nil {
		panic("features: Add on a store opened with Open; use Create")
	}
	var pooled, grid, index []byte
	next := len(s.hashes)
	newRec := map[string]int{}
	for _, it := range items {
		if !isHash(it.Hash) || it.Name == "" || strings.ContainsAny(it.Name, "\t\n") {
			return fmt.Errorf("features: bad item name %q or hash %q", it.Name, it.Hash)
		}
		r, ok := s.byHash[it.Hash]
		if !ok {
			r, ok = newRec[it.Hash]
		}
		if !ok {
			if len(it.Pooled) != s.man.Dim || (s.gridLen > 0 && len(it.Grid) != s.gridLen) {
				return fmt.Errorf("features: %s: %d pooled and %d grid values, want %d and %d", it.Name, len(it.Pooled), len(it.Grid), s.man.Dim, s.gridLen)
			}
			if slices.ContainsFunc(it.Pooled, notFinite) || slices.ContainsFunc(it.Grid, notFinite) {
				return fmt.Errorf("features: %s: features that are not finite (NaN or Inf) are not stored", it.Name)
			}
			r = next
			next++
			newRec[it.Hash] = r
			for _, v := range it.Pooled {
				pooled = binary.LittleEndian.AppendUint32(pooled, math.Float32bits(v))
			}
			if s.gridLen > 0 {
				for _, v := range it.Grid {
					grid = binary.LittleEndian.AppendUint16(grid, f16.FromFloat32(v))
				}
			}
		}
		if cur, seen := s.byName[it.Name]; seen && cur == r {
			continue
		}
		index = fmt.Appendf(index, "%d\t%s\t%s\n", r, it.Hash, it.Name)
		if _, seen := s.byName[it.Name]; !seen {
			s.names = append(s.names, it.Name)
		}
		s.byName[it.Name] = r
	}
	if len(pooled) > 0 {
		if err := writeSync(s.pooledW, pooled); err != nil {
			return err
		}
		if s.gridLen > 0 {
			if _, err := s.grid.WriteAt(grid, int64(len(s.hashes))*int64(2*s.gridLen)); err != nil {
				return fmt.Errorf("features: %w", err)
			}
			if err := s.grid.Sync(); err != nil {
				return fmt.Errorf("features: %w", err)
			}
		}
	}
	if err := writeSync(s.indexW, index); err != nil {
		return err
	}
	// Only now are the new records part of the store.
	s.hashMu.Lock()
	for _, it := range items {
		if r, ok := newRec[it.Hash]; ok && r == len(s.hashes) {
			s.hashes = append(s.hashes, it.Hash)
			s.byHash[it.Hash] = r
			s.pooled = append(s.pooled, it.Pooled...)
		}
	}
	s.hashMu.Unlock()
	// The stamps last: the records are whole without them.
	if err := s.addStamps(items); err != nil {
		return fmt.Errorf("%w (the features are stored, the photos' stamps not: run it again)", err)
	}
	return nil
}

func writeSync(f *os.File, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	return nil
}

// Close closes the store's files.
func (s *Store) Close() error {
	var errs []error
	for _, f := range []*os.File{s.grid, s.pooledW, s.indexW, s.stampsW, s.lock} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	s.grid, s.pooledW, s.indexW, s.stampsW, s.lock = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}
