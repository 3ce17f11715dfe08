//go:build cgo && !purecpu

package cpu

import (
	"fmt"
	"strings"
	"testing"
)

// The rate that decides FastBFloat16 is measured, so it can be broken in ways
// a constant cannot: loops the compiler dropped would read as infinitely fast,
// an instruction it could not emit as 0. On the CPUs measured it was 1x (an
// Intel Xeon without AMX) and 2x (AMD's Zen 4); on a 2-core VM whose cores
// were busy with other work (CI runs packages' tests side by side) it read
// 0.23x-0.49x once in about a dozen runs, hence the wide range.
func TestBF16DotSpeedupIsAMeasurement(t *testing.T) {
	d := New(1)
	defer d.Close()
	if !d.NativeBFloat16() {
		t.Skip("this CPU has no AVX512-BF16: FastBFloat16 measures nothing here")
	}
	if s := bf16DotSpeedup(); !(s >= 0.1 && s <= 10) {
		t.Fatalf("AVX512-BF16 dot products do %.3gx the multiply-adds a second of float32 FMAs, outside 0.1..10: the measuring loops (bf16rate.c) are broken", s)
	}
	// The log's reason gives the measured rate (or AMX, which decides alone).
	if why, rate := d.BFloat16Why(), fmt.Sprintf("do %.2fx the multiply-adds", bf16DotSpeedup()); why != "AMX" && !strings.Contains(why, rate) {
		t.Errorf("BFloat16Why = %q, want AMX or the measured rate (%s)", why, rate)
	}
}
