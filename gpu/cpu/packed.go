//go:build cgo && !purecpu

package cpu

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
)

// PackWeight packs w (n, k), row stride ldw, in bfloat16 or int8 (see
// gpu.PackWeight, which keeps float32 weights itself). bfloat16 needs
// AVX512-BF16 (gpu.FastBFloat16 says whether it pays); int8, AVX512-VNNI.
func (d *Device) PackWeight(w gpu.Buf, n, k, ldw int, p gpu.Precision) (gpu.PackedWeight, error) {
	matrix(d.f(w), n, k, ldw, "W")
	var pack func(d *Device, w gpu.Buf, n, k, ldw int) gpu.PackedWeight
	var needs string // the instructions the kernel runs on
	switch p {
	case gpu.BFloat16:
		pack, needs = packBF16, "AVX512-BF16"
	case gpu.Int8:
		pack, needs = packInt8, "AVX512-VNNI"
	default:
		return nil, fmt.Errorf("gpu/cpu: weights cannot be packed in precision %q; use float32, bfloat16 or int8", p)
	}
	if !d.Packs(p) {
		return nil, fmt.Errorf("gpu/cpu: %s weights need %s, which this CPU lacks; use precision float32", p, needs)
	}
	if n == 0 || k == 0 {
		return nil, fmt.Errorf("gpu/cpu: cannot pack an empty (%d, %d) weight", n, k)
	}
	if p == gpu.Int8 && k > maxInt8K {
		return nil, fmt.Errorf("gpu/cpu: an int8 weight takes at most %d inputs (k), past which its int32 sums could overflow; this one has %d: use precision bfloat16 or float32", maxInt8K, k)
	}
	return pack(d, w, n, k, ldw), nil
}

// maxInt8K is the most inputs an int8 product sums: each of its terms is at
// most 255*127, and the sums are int32.
const maxInt8K = 65536

// Packs reports whether PackWeight takes precision p on this CPU.
func (d *Device) Packs(p gpu.Precision) bool {
	return p == gpu.BFloat16 && hasBF16Dot() || p == gpu.Int8 && hasVNNI()
}

// overTiles runs gemm over C's n columns split across the threads at whole
// 32-column tiles (the packed kernels' widest), each thread about gemmGrain
// multiply-adds at least; a column costs macsPerCol, which the kernel does
// faster times as fast as float32's (cgoPiece).
func (d *Device) overTiles(n, macsPerCol, faster int, gemm func(j0, j1 int)) {
	tiles := (n + 31) / 32
	grain := max(1, gemmGrain/(macsPerCol*32))
	d.parallel(tiles, grain, func(lo, hi int) {
		inPieces(lo*32, min(hi*32, n), 32, macsPerCol/faster, gemm)
	})
}

// packedWeight is what every packed weight keeps: the float32 weight it packs
// (Update reads it again) and its shape.
type packedWeight struct {
	d         *Device
	w         gpu.Buf
	n, k, ldw int
}

// operands checks A (m, k) and C (m, n), at row strides lda and ldc, and
// returns their memory.
func (p *packedWeight) operands(m int, a gpu.Buf, lda int, c gpu.Buf, ldc int) (as, cs []float32) {
	return matrix(p.d.f(a), m, p.k, lda, "A"), matrix(p.d.f(c), m, p.n, ldc, "C")
}

// rowsOver runs convert, which rounds or quantizes rows of A of k values,
// over ranges of A's m rows, split over the threads when there are enough: a
// batch of images' 49 regions each is hundreds of rows.
func (d *Device) rowsOver(m, k int, convert func(lo, hi int)) {
	d.parallel(m, max(1, grain/k), convert)
}
