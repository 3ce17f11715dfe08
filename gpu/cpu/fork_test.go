package cpu

import (
	"slices"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// TestForkIsIndependent: a fork is a second device with the same threads, and
// each keeps computing after the other is closed.
func TestForkIsIndependent(t *testing.T) {
	var d gpu.Device = New(3)
	defer d.Close()
	f, ok := d.(gpu.Forker)
	if !ok {
		t.Fatal("the CPU device does not declare gpu.Forker")
	}
	e, err := f.Fork()
	if err != nil {
		t.Fatal(err)
	}
	if e == d || e.(*Device).Threads() != 3 {
		t.Fatalf("fork %p of %p with %d threads, want a second device with 3", e, d, e.(*Device).Threads())
	}
	add := func(dev gpu.Device) []float32 {
		a, out := dev.Alloc(3), dev.Alloc(3)
		defer dev.Free(a)
		defer dev.Free(out)
		dev.Upload(a, []float32{1, 2, 3})
		dev.Add(out, a, a)
		host := make([]float32, 3)
		if err := dev.Download(host, out); err != nil {
			t.Fatal(err)
		}
		return host
	}
	if got := add(e); !slices.Equal(got, []float32{2, 4, 6}) {
		t.Errorf("fork computes %v, want [2 4 6]", got)
	}
	e.Close()
	if got := add(d); !slices.Equal(got, []float32{2, 4, 6}) {
		t.Errorf("after closing the fork the device computes %v, want [2 4 6]", got)
	}
}
