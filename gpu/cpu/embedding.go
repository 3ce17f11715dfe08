package cpu

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
)

// embeddingCheck returns table (vocab, dim) and rows (len(ids), dim), checking ids.
func (d *Device) embeddingCheck(op string, table, rows gpu.Buf, ids []int32, dim int) (t, r []float32) {
	if dim < 1 {
		panic(fmt.Sprintf("gpu/cpu: %s with dim %d; it must be >= 1", op, dim))
	}
	t = d.f(table)
	if len(t)%dim != 0 {
		panic(fmt.Sprintf("gpu/cpu: %s table has %d elements, not a multiple of dim %d", op, len(t), dim))
	}
	vocab := len(t) / dim
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			panic(fmt.Sprintf("gpu/cpu: %s id %d at position %d is outside the vocabulary of %d", op, id, i, vocab))
		}
	}
	return t, d.need(rows, len(ids)*dim, op+" rows (len(ids), dim)")
}

// EmbeddingForward writes out (len(ids), dim) = rows ids of table (vocab, dim).
func (d *Device) EmbeddingForward(out, table gpu.Buf, ids []int32, dim int) {
	t, o := d.embeddingCheck("EmbeddingForward", table, out, ids, dim)
	for i, id := range ids {
		copy(o[i*dim:(i+1)*dim], t[int(id)*dim:(int(id)+1)*dim])
	}
}

// EmbeddingBackward adds row i of dout into row ids[i] of dtable. Workers own
// column ranges, so repeated ids never race.
func (d *Device) EmbeddingBackward(dtable, dout gpu.Buf, ids []int32, dim int) {
	t, g := d.embeddingCheck("EmbeddingBackward", dtable, dout, ids, dim)
	d.parallel(dim, max(1, grain/max(len(ids), 1)), func(lo, hi int) {
		for i, id := range ids {
			dst, src := t[int(id)*dim+lo:int(id)*dim+hi], g[i*dim+lo:i*dim+hi]
			for j, v := range src {
				dst[j] += v
			}
		}
	})
}
