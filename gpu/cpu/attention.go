package cpu

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
)

// attentionSizes checks AttentionScores' sizes and returns the number of images.
func attentionSizes(op string, rows, perImage, regions, dim int) int {
	if rows < 0 || perImage < 1 || regions < 1 || dim < 1 || rows%perImage != 0 {
		panic(fmt.Sprintf("gpu/cpu: %s of %d rows, %d per image, %d regions of %d: want rows a multiple of perImage and every size positive", op, rows, perImage, regions, dim))
	}
	return rows / perImage
}

// attentionOperands checks the sizes and the operands AttentionScores and
// AttentionScoresExp share, and returns the operands' floats: scores (rows,
// regions), the images' regions p (pf, or its exponential ep: pName; images,
// regions, dim), q (rows, dim) and v (dim).
func (d *Device) attentionOperands(op, pName string, scores, p, q, v gpu.Buf, rows, perImage, regions, dim int) (s, ps, qs, vs []float32) {
	B := attentionSizes(op, rows, perImage, regions, dim)
	return d.need(scores, rows*regions, op+" scores (rows, regions)"),
		d.need(p, B*regions*dim, op+" "+pName+" (images, regions, dim)"),
		d.need(q, rows*dim, op+" q (rows, dim)"),
		d.need(v, dim, op+" v (dim)")
}

// AttentionScores writes scores (rows, regions) = tanh(pf[r/perImage] + q[r]) · v,
// and the tanh into e when it is not nil (see gpu.Device).
func (d *Device) AttentionScores(scores, e, pf, q, v gpu.Buf, rows, perImage, regions, dim int) {
	s, ps, qs, vs := d.attentionOperands("AttentionScores", "pf", scores, pf, q, v, rows, perImage, regions, dim)
	var es []float32
	if e != nil {
		es = d.need(e, rows*regions*dim, "AttentionScores e (rows, regions, dim)")
	}
	// Each (row, region) pair costs dim tanh, about 8 multiply-adds each to
	// be worth a thread; in time, about 16 each (178 ns a pair at dim 512 on
	// Zen 4), which sizes the cgo calls (cgoPiece).
	d.parallel(rows*regions, max(1, grain/(8*dim)), func(lo, hi int) {
		inPieces(lo, hi, 1, 16*dim, func(lo, hi int) {
			attentionScores(s, es, ps, qs, vs, lo, hi, perImage, regions, dim)
		})
	})
}

// AttentionScoresBackward adds the gradients of pf and q (see gpu.Device).
func (d *Device) AttentionScoresBackward(dpf, dq, dscores, e, v gpu.Buf, rows, perImage, regions, dim int) {
	B := attentionSizes("AttentionScoresBackward", rows, perImage, regions, dim)
	dp := d.need(dpf, B*regions*dim, "AttentionScoresBackward dpf (images, regions, dim)")
	dqs := d.need(dq, rows*dim, "AttentionScoresBackward dq (rows, dim)")
	ds := d.need(dscores, rows*regions, "AttentionScoresBackward dscores (rows, regions)")
	es := d.need(e, rows*regions*dim, "AttentionScoresBackward e (rows, regions, dim)")
	vs := d.need(v, dim, "AttentionScoresBackward v (dim)")
	// By image: an image's rows all add into its dpf, so no two threads write
	// the same element.
	d.parallel(B, max(1, grain/(4*perImage*regions*dim)), func(lo, hi int) {
		attentionScoresBackward(dp, dqs, ds, es, vs, lo, hi, perImage, regions, dim)
	})
}

// AttentionExp writes ep = exp(2·clamp(pf, ±gpu.AttentionExpClamp)) (see gpu.Device).
func (d *Device) AttentionExp(ep, pf gpu.Buf, n int) {
	o, x := d.need(ep, n, "AttentionExp ep"), d.need(pf, n, "AttentionExp pf")
	// An exponential is about 16 vector operations: a multiply-add an element.
	d.parallel(n, grain, func(lo, hi int) { attentionExp(o[lo:hi], x[lo:hi], gpu.AttentionExpClamp) })
}

// AttentionScoresExp writes AttentionScores' scores from ep = AttentionExp(pf)
// (see gpu.Device).
func (d *Device) AttentionScoresExp(scores, ep, q, v gpu.Buf, rows, perImage, regions, dim int) {
	s, ps, qs, vs := d.attentionOperands("AttentionScoresExp", "ep", scores, ep, q, v, rows, perImage, regions, dim)
	if len(d.expQ) < len(qs) {
		d.expQ = make([]float32, len(qs))
	}
	eq := d.expQ[:len(qs)]
	attentionExp(eq, qs, gpu.AttentionExpClamp) // a row's dim, against regions*dim for its scores
	var sv float32
	for _, x := range vs {
		sv += x
	}
	// A (row, region) pair costs dim multiplies, adds and divisions: about 6
	// float32 multiply-adds each in time (65 ns a pair at dim 512 on Zen 4),
	// which sizes the threads' shares and the cgo calls (cgoPiece).
	d.parallel(rows*regions, max(1, grain/(6*dim)), func(lo, hi int) {
		inPieces(lo, hi, 1, 6*dim, func(lo, hi int) {
			attentionScoresExp(s, ps, eq, vs, sv, lo, hi, perImage, regions, dim)
		})
	})
}
