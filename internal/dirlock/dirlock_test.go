package dirlock

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// A second holder is refused while the first holds the lock, and takes it
// once the first has let go.
func TestLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	first, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrHeld) {
		t.Errorf("a second Lock while the first holds it: %v, want ErrHeld", err)
	}
	// Another process is refused too (util-linux's flock, where installed).
	if _, err := exec.LookPath("flock"); err == nil {
		if out, err := exec.Command("flock", "-n", dir+"/"+File, "true").CombinedOutput(); err == nil {
			t.Errorf("flock -n in another process took the held lock (%s)", out)
		}
	}
	// A refused Lock closes the file it opened: a trainer retrying would
	// otherwise run out of descriptors.
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		for range 10 {
			Lock(dir)
		}
		if after, _ := os.ReadDir("/proc/self/fd"); len(after) != len(fds) {
			t.Errorf("%d open files after 10 refused Locks, %d before", len(after), len(fds))
		}
	}
	first.Close()
	second, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after the first let go: %v", err)
	}
	second.Close()
}
