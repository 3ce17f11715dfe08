package cpu

import (
	"math"

	"github.com/captioner/captioner/gpu"
)

func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }
func tanh(x float32) float32    { return float32(math.Tanh(float64(x))) }

// LSTMCellForward: act = sigmoid(i), sigmoid(f), tanh(g), sigmoid(o) of gates
// (B, 4H); c = f*cPrev + i*g; h = o*tanh(c).
func (d *Device) LSTMCellForward(h, c, act, gates, cPrev gpu.Buf, batch, hidden int) {
	H := hidden
	g := d.need(gates, batch*4*H, "LSTMCellForward gates (B, 4H)")
	cp := d.need(cPrev, batch*H, "LSTMCellForward cPrev (B, H)")
	a := d.need(act, batch*4*H, "LSTMCellForward act (B, 4H)")
	cs := d.need(c, batch*H, "LSTMCellForward c (B, H)")
	hs := d.need(h, batch*H, "LSTMCellForward h (B, H)")
	d.parallel(batch, max(1, grain/(8*H)), func(lo, hi int) {
		for b := lo; b < hi; b++ {
			gr, ar := g[b*4*H:(b+1)*4*H], a[b*4*H:(b+1)*4*H]
			for j := 0; j < H; j++ {
				i, f, gg, o := sigmoid(gr[j]), sigmoid(gr[H+j]), tanh(gr[2*H+j]), sigmoid(gr[3*H+j])
				ar[j], ar[H+j], ar[2*H+j], ar[3*H+j] = i, f, gg, o
				cv := f*cp[b*H+j] + i*gg
				cs[b*H+j] = cv
				hs[b*H+j] = o * tanh(cv)
			}
		}
	})
}

// LSTMCellBackward writes dgates (B, 4H) and dcPrev (B, H) from dh, dc (B, H) and
// the forward's act, c and cPrev. dcPrev may alias dc.
func (d *Device) LSTMCellBackward(dgates, dcPrev, dh, dc, act, c, cPrev gpu.Buf, batch, hidden int) {
	H := hidden
	dg := d.need(dgates, batch*4*H, "LSTMCellBackward dgates (B, 4H)")
	dcp := d.need(dcPrev, batch*H, "LSTMCellBackward dcPrev (B, H)")
	dhs := d.need(dh, batch*H, "LSTMCellBackward dh (B, H)")
	dcs := d.need(dc, batch*H, "LSTMCellBackward dc (B, H)")
	a := d.need(act, batch*4*H, "LSTMCellBackward act (B, 4H)")
	cs := d.need(c, batch*H, "LSTMCellBackward c (B, H)")
	cp := d.need(cPrev, batch*H, "LSTMCellBackward cPrev (B, H)")
	d.parallel(batch, max(1, grain/(8*H)), func(lo, hi int) {
		for b := lo; b < hi; b++ {
			ar, dr := a[b*4*H:(b+1)*4*H], dg[b*4*H:(b+1)*4*H]
			for j := 0; j < H; j++ {
				k := b*H + j
				i, f, g, o := ar[j], ar[H+j], ar[2*H+j], ar[3*H+j]
				tc := tanh(cs[k])
				// Total gradient into c: from the next step and through h = o*tanh(c).
				dct := dcs[k] + dhs[k]*o*(1-tc*tc)
				dr[j] = dct * g * i * (1 - i)
				dr[H+j] = dct * cp[k] * f * (1 - f)
				dr[2*H+j] = dct * i * (1 - g*g)
				dr[3*H+j] = dhs[k] * tc * o * (1 - o)
				dcp[k] = dct * f
			}
		}
	})
}
