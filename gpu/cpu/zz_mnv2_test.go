package cpu

import (
	"testing"
	"time"

	"github.com/captioner/captioner/gpu"
)

type layer struct {
	kind string // conv, dw, pw, add
	p    gpu.ConvParams
	in, out, w, b gpu.Buf
}

func mnv2(d *Device, N int) ([]layer, map[string]time.Duration) {
	var ls []layer
	res, cin := 224, 3
	mk := func(kind string, k, s, c, oc, hin int) {
		pad := 0
		hout := hin
		if k == 3 {
			if s == 1 {
				pad = 1
			} else {
				hout = hin / 2
			}
		}
		p := gpu.ConvParams{N: N, H: hin, W: hin, C: c, OC: oc, KH: k, KW: k, StrideH: s, StrideW: s, PadTop: pad, PadLeft: pad, OH: hout, OW: hout}
		wl := oc * k * k * c
		if kind == "dw" {
			wl = k * k * c
		}
		ls = append(ls, layer{kind, p, filled(d, N*hin*hin*c), d.Alloc(N * hout * hout * oc), filled(d, wl), filled(d, oc)})
	}
	mk("conv", 3, 2, 3, 32, 224)
	res, cin = 112, 32
	mk("dw", 3, 1, 32, 32, 112)
	mk("pw", 1, 1, 32, 16, 112)
	cin = 16
	for _, bl := range [][4]int{{6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}} {
		for i := 0; i < bl[2]; i++ {
			s := 1
			if i == 0 {
				s = bl[3]
			}
			e := cin * bl[0]
			mk("pw", 1, 1, cin, e, res)
			mk("dw", 3, s, e, e, res)
			if s == 2 {
				res /= 2
			}
			mk("pw", 1, 1, e, bl[1], res)
			if s == 1 && cin == bl[1] {
				ls = append(ls, layer{kind: "add", in: d.Alloc(N * res * res * cin), out: d.Alloc(N * res * res * cin)})
			}
			cin = bl[1]
		}
	}
	mk("pw", 1, 1, 320, 1280, 7)
	return ls, map[string]time.Duration{}
}

func BenchmarkZZMobileNetV2(b *testing.B) {
	for _, th := range []int{1, 2} {
	d := New(th)
	for _, N := range []int{1} {
		ls, times := mnv2(d, N)
		b.Run(name(N), func(b *testing.B) {
			var flops float64
			for _, l := range ls {
				if l.kind == "dw" {
					flops += 2 * float64(l.p.N*l.p.OH*l.p.OW*l.p.C*9)
				} else if l.kind != "add" {
					flops += 2 * float64(l.p.N*l.p.OH*l.p.OW*l.p.OC*l.p.KH*l.p.KW*l.p.C)
				}
			}
			t := start(b)
			for range b.N {
				for _, l := range ls {
					t0 := time.Now()
					switch l.kind {
					case "dw":
						d.DepthwiseConv2D(l.out, l.in, l.w, l.b, l.p, gpu.ActReLU6)
					case "add":
						d.Add(l.out, l.in, l.out)
					default:
						d.Conv2D(l.out, l.in, l.w, l.b, l.p, gpu.ActReLU6)
					}
					times[l.kind] += time.Since(t0)
				}
			}
			t.report(b, flops)
			b.ReportMetric(float64(N*b.N)/time.Since(t.wall).Seconds(), "img/s")
			for k, v := range times {
				b.ReportMetric(float64(v.Microseconds())/float64(b.N), k+"-us")
			}
		})
	}
	}
}
