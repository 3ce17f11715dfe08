package cpu

import "github.com/captioner/captioner/gpu"

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
		lstmForward(hs[lo*H:hi*H], cs[lo*H:hi*H], a[lo*4*H:hi*4*H], g[lo*4*H:hi*4*H], cp[lo*H:hi*H], hi-lo, H)
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
		lstmBackward(dg[lo*4*H:hi*4*H], dcp[lo*H:hi*H], dhs[lo*H:hi*H], dcs[lo*H:hi*H], a[lo*4*H:hi*4*H], cs[lo*H:hi*H], cp[lo*H:hi*H], hi-lo, H)
	})
}
