package f16

import (
	"math"
	"testing"
)

func TestFloat16RoundTripsEveryValue(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := ToFloat32(uint16(h))
		if f != f { // NaN: any NaN back is fine
			if g := FromFloat32(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %#04x", h, g)
			}
			continue
		}
		if g := FromFloat32(f); g != uint16(h) {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, g)
		}
	}
}

func TestFloat16Rounding(t *testing.T) {
	cases := []struct {
		in   float32
		want float32
	}{
		{1 + 1.0/2048, 1},                   // halfway between 1 and 1+2^-10: to even (1)
		{1 + 3.0/2048, 1 + 2.0/1024},        // halfway, odd below: up
		{1 + 1.0/2048 + 1e-6, 1 + 1.0/1024}, // above halfway: up
		{65504, 65504},                      // largest finite
		{65520, float32(math.Inf(1))},       // rounds past the largest: infinity
		{-3.14159, -3.140625},
		{5.9604645e-8, 5.9604645e-8}, // smallest subnormal
		{2.9802322e-8, 0},            // half of it: ties to even (0)
		{1e-9, 0},
	}
	for _, c := range cases {
		if got := ToFloat32(FromFloat32(c.in)); got != c.want {
			t.Errorf("%g -> %g, want %g", c.in, got, c.want)
		}
	}
}
