// Package atomicfile writes files so that readers, and a process killed mid-write,
// never see half of one: the bytes go to a temporary file in the same folder, which
// is synced and then renamed over the destination, and the folder is synced so
// that the rename outlives a power cut.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile writes b to path atomically with mode 0644 (os.CreateTemp would leave
// 0600, but models, vocabularies and curves are meant to be shared and served).
// Only a file is replaced: a path that names a device or a pipe
// (eval --captions /dev/stdout) is written to as it is, for renaming a file
// over it would put a file in its place (as root, over /dev/null for the
// whole system), and through a link to a file the file is replaced, the link
// kept.
//
// A read-only file (no write permission for anyone) is refused: renaming over
// it would replace what its owner protected (import --out naming one did).
func WriteFile(path string, b []byte) error {
	if isDevice(path) {
		return writeThrough(path, b)
	}
	tmp, path, err := tempBeside(path)
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	err = errors.Join(err, tmp.Chmod(0o644), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return syncDir(filepath.Dir(path))
}

// isDevice says whether path names a device or a pipe, which WriteFile
// writes through.
func isDevice(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.Mode().IsRegular() && !st.IsDir()
}

// tempBeside creates a temporary file beside the file that WriteFile(path)
// replaces, path or the file its link names, and returns it with that file's
// path. A read-only file is refused.
func tempBeside(path string) (*os.File, string, error) {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o222 == 0 {
		return nil, "", fmt.Errorf("%s is read-only (mode %v): make it writable (chmod u+w) to replace it", path, st.Mode().Perm())
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+tmpSuffix+"*")
	return tmp, path, err
}

// CanWrite says whether WriteFile could write path now, trying a temporary
// file beside it: a command checks its output before long work whose result
// a refused write at the end would lose. A device or a pipe passes as it is.
func CanWrite(path string) error {
	if isDevice(path) {
		return nil
	}
	tmp, target, err := tempBeside(path)
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Op == "open" {
		// Said of the folder: the temporary's name is no one's business.
		return fmt.Errorf("%s cannot be written: its folder %s takes no new file (%w)", target, filepath.Dir(target), pe.Err)
	}
	if err != nil {
		return err
	}
	return errors.Join(tmp.Close(), os.Remove(tmp.Name()))
}

// writeThrough writes b into the device or pipe at path.
func writeThrough(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}

// syncDir flushes dir's entries: the rename is one, and until it reaches the
// disk a power cut can bring the old file back (a training run would then
// find its previous checkpoint beside files of the next epoch). A file
// system that cannot sync a folder (EINVAL) keeps it as it can.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) {
		err = nil
	}
	return errors.Join(err, d.Close())
}

// tmpSuffix marks WriteFile's temporaries: NAME.tmp followed by random digits.
const tmpSuffix = ".tmp"

// RemoveStale removes the temporaries that WriteFile calls in dir left when
// their process was killed mid-write. Only a folder's one writer may call it:
// another's temporaries may be in use.
func RemoveStale(dir string) error {
	tmps, err := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix+"[0-9]*"))
	for _, t := range tmps {
		err = errors.Join(err, os.Remove(t))
	}
	return err
}
