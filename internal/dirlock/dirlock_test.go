package dirlock

import (
	"errors"
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
	first.Close()
	second, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after the first let go: %v", err)
	}
	second.Close()
}
