//go:build cgo

package emutest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// overrunEnv makes the test binary run the overrun kernel and nothing else.
const overrunEnv = "EMUTEST_OVERRUN"

func TestMain(m *testing.M) {
	if os.Getenv(overrunEnv) == "1" {
		launch(overrun, make([]int32, 8), 1, 1, 8)
		os.Stderr.WriteString("overrun: no fault\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestGuardPage runs a kernel that writes one element past its buffer in a
// child process, which must die of the fault at once.
func TestGuardPage(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), overrunEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "SIGSEGV") {
		t.Fatalf("overrun kernel: err %v, output %q; want death by SIGSEGV", err, out)
	}
}

func TestGridIDs(t *testing.T) {
	const gx, gy, bx = 3, 2, 5
	out := make([]int32, gx*gy*bx)
	if rc := launch(gridIDs, out, gx, gy, bx); rc != ok {
		t.Fatalf("launch: %d", rc)
	}
	for y := range gy {
		for x := range gx {
			for th := range bx {
				i := (y*gx+x)*bx + th
				if want := int32(y*1000000 + x*1000 + th); out[i] != want {
					t.Fatalf("out[%d] = %d, want %d", i, out[i], want)
				}
			}
		}
	}
}

func TestBarrier(t *testing.T) {
	for _, bx := range []int{1, 2, 32, 256} {
		const blocks = 3
		out := make([]int32, blocks*bx)
		if rc := launch(rotate, out, blocks, 1, bx); rc != ok {
			t.Fatalf("block %d: launch: %d", bx, rc)
		}
		for b := range blocks {
			for th := range bx {
				if want := int32(b*100 + (th+1)%bx); out[b*bx+th] != want {
					t.Fatalf("block size %d: out[%d] = %d, want %d", bx, b*bx+th, out[b*bx+th], want)
				}
			}
		}
	}
}

func TestDivergentBarrier(t *testing.T) {
	out := make([]int32, 8)
	if rc := launch(divergent, out, 1, 1, 8); rc != divergentBarrier {
		t.Fatalf("launch of a kernel whose thread 0 skips the barrier: %d, want %d", rc, divergentBarrier)
	}
}

func TestUndeclaredBarrier(t *testing.T) {
	out := make([]int32, 8)
	if rc := launch(undeclared, out, 1, 1, 8); rc != undeclaredBarrier {
		t.Fatalf("launch of a barrier without shared memory: %d, want %d", rc, undeclaredBarrier)
	}
	// The emulator is usable again after the long jump out of the kernel.
	if rc := launch(gridIDs, out, 1, 1, 8); rc != ok || out[7] != 7 {
		t.Fatalf("launch after the failure: %d, out %v", rc, out)
	}
}

func TestBadLaunch(t *testing.T) {
	out := make([]int32, 1)
	for _, g := range [][3]int{{0, 1, 1}, {1, 0, 1}, {1, 1, 0}, {1, 1, maxThreadsPerBlock + 1}} {
		if rc := launch(gridIDs, out, g[0], g[1], g[2]); rc != badLaunch {
			t.Errorf("launch on grid %v: %d, want %d", g, rc, badLaunch)
		}
	}
}
