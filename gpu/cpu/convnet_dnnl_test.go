//go:build cgo && !purecpu

package cpu

import "testing"

// The rate that decides FastBFloat16 is measured, so it can be broken in ways
// a constant cannot: loops the compiler dropped would read as infinitely fast,
// an instruction it could not emit as 0. On the CPUs measured it was 1x (an
// Intel Xeon without AMX) and 2x (AMD's Zen 4).
func TestBF16DotSpeedupIsAMeasurement(t *testing.T) {
	d := New(1)
	defer d.Close()
	if !d.NativeBFloat16() {
		t.Skip("this CPU has no AVX512-BF16: FastBFloat16 measures nothing here")
	}
	if s := bf16DotSpeedup(); !(s >= 0.5 && s <= 4) {
		t.Fatalf("AVX512-BF16 dot products do %.3gx the multiply-adds a second of float32 FMAs, outside 0.5..4: the measuring loops (bf16rate.c) are broken", s)
	}
}
