package features

import (
	"bytes"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

// stampsFile records, for each image name, the size and modification time
// its photo had when extract last read it (Item.Stamp): a line
// "<size>\t<modification time, Unix ns>\t<name>" each, appended when they
// change; a name's last line holds. Features are looked up by name alone,
// so a photo replaced under its name since then is told by its stamp
// (Store.Stamp), where hashing every photo again would read them all. The
// stamps only advise: a line that cannot be read is passed over, and a store
// made before them has none.
const stampsFile = "stamps.tsv"

// Stamp is a photo file's size and modification time.
type Stamp struct{ Size, ModTime int64 }

// StampOf is the stamp of the file fi describes.
func StampOf(fi fs.FileInfo) Stamp { return Stamp{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()} }

// Stamp returns the stamp of name's photo when extract last read it.
func (s *Store) Stamp(name string) (Stamp, bool) {
	st, ok := s.stamps[name]
	return st, ok
}

// readStamps reads the complete lines of the stamps file, returning their
// length: a partial last line is an interrupted write, which openWriters cuts.
func (s *Store) readStamps() (int, error) {
	b, err := readOrEmpty(filepath.Join(s.dir, stampsFile))
	if err != nil {
		return 0, err
	}
	complete := bytes.LastIndexByte(b, '\n') + 1
	s.stamps = map[string]Stamp{}
	for _, line := range strings.Split(string(b[:complete]), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 || f[2] == "" {
			continue
		}
		size, err1 := strconv.ParseInt(f[0], 10, 64)
		mod, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 == nil && err2 == nil {
			s.stamps[f[2]] = Stamp{Size: size, ModTime: mod}
		}
	}
	return complete, nil
}

// addStamps appends the stamps of items that have one (extract's) and whose
// stamp changed.
func (s *Store) addStamps(items []Item) error {
	var lines []byte
	changed := map[string]Stamp{}
	for _, it := range items {
		if it.Stamp == (Stamp{}) {
			continue
		}
		if cur, ok := s.stamps[it.Name]; ok && cur == it.Stamp {
			continue
		}
		lines = fmt.Appendf(lines, "%d\t%d\t%s\n", it.Stamp.Size, it.Stamp.ModTime, it.Name)
		changed[it.Name] = it.Stamp
	}
	if err := writeSync(s.stampsW, lines); err != nil {
		return err
	}
	for name, st := range changed {
		s.stamps[name] = st
	}
	return nil
}
