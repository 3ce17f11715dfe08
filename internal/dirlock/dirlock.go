// Package dirlock takes a folder's write lock: an exclusive flock on the file
// File inside it, which no other process can take while this one holds it,
// and which ends with the process however it ends (a kill -9 included), so no
// stale lock is ever left to clear by hand.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// File is the lock file's name inside a locked folder.
const File = "lock"

// ErrHeld is matched (errors.Is) by Lock's error when another process holds the lock.
var ErrHeld = errors.New("dirlock: another process holds the folder's lock")

// Lock takes dir's lock without waiting; closing the returned file releases it.
func Lock(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, File), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrHeld, dir)
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return f, nil
}
