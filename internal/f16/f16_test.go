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
		{1e5, float32(math.Inf(1))}, // beyond the largest: infinity, not a NaN from the spilled mantissa
		{-1e5, float32(math.Inf(-1))},
		{5.9604645e-8, 5.9604645e-8}, // smallest subnormal
		{2.9802322e-8, 0},            // half of it: ties to even (0)
		{4.4703484e-8, 5.9604645e-8}, // 1.5 halves of it: above halfway, up to the smallest subnormal
		{8.940697e-8, 1.1920929e-7},  // 3 halves of it: halfway, odd below (1): up to 2
		{1e-9, 0},
	}
	for _, c := range cases {
		if got := ToFloat32(FromFloat32(c.in)); got != c.want {
			t.Errorf("%g -> %g, want %g", c.in, got, c.want)
		}
	}
}

// NaNs convert exactly to float32: their sign and payload, and so the quiet
// bit. Back to float16 a NaN keeps its sign and becomes the quiet NaN.
func TestFloat16NaNBits(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		f    uint32
		back uint16
	}{
		{0x7e00, 0x7fc00000, 0x7e00}, // the quiet NaN
		{0xfe00, 0xffc00000, 0xfe00}, // negative
		{0x7e01, 0x7fc02000, 0x7e00}, // with a payload
	} {
		if got := math.Float32bits(ToFloat32(c.h)); got != c.f {
			t.Errorf("ToFloat32(%#04x) = %#08x, want %#08x", c.h, got, c.f)
		}
		if got := FromFloat32(math.Float32frombits(c.f)); got != c.back {
			t.Errorf("FromFloat32(%#08x) = %#04x, want %#04x", c.f, got, c.back)
		}
	}
}
