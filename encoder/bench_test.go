package encoder

import (
	"fmt"
	"testing"
	"time"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/internal/benchinput"
	"github.com/captioner/captioner/internal/benchstat"
)

// macs counts the multiply-accumulates of one image up to the pooled features
// (torchvision quotes 0.30 G for MobileNetV2 including the classifier).
func macs(c *Config) (pointwise, depthwise, stem int) {
	s := ceilDiv(c.Input, 2)
	stem = s * s * c.Stem * 27
	for _, b := range c.Blocks {
		o := ceilDiv(s, b.Stride)
		if b.Expand {
			pointwise += s * s * b.In * b.Hidden
		}
		depthwise += o * o * b.Hidden * 9
		pointwise += o * o * b.Hidden * b.Out
		s = o
	}
	pointwise += s * s * c.Blocks[len(c.Blocks)-1].Out * c.Head
	return pointwise, depthwise, stem
}

// BenchmarkEncode measures images/s and GFLOP/s (2 x MACs) of Encode on the CPU
// device with 2 threads, the setting of the PyTorch reference
// (shared/bench/torch_captioner.py encoder --threads 2 --batch 1,8,32), in
// float32 (the oneDNN chain and the per-layer kernels), bfloat16 and int8 (the
// oneDNN chain).
func BenchmarkEncode(b *testing.B) {
	for _, path := range []string{"float32", "bfloat16", "int8", "float32-kernels"} {
		for _, batch := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("precision=%s/batch=%d", path, batch), func(b *testing.B) {
				var e *Encoder
				if path == "float32-kernels" {
					e, _ = newKernelEncoder(b, quantModel, batch)
				} else {
					e, _ = newEncoderIn(b, quantModel, batch, gpu.Precision(path))
				}
				pw, dw, st := macs(&e.cfg)
				flops := 2 * float64(pw+dw+st) * float64(batch)
				x := benchinput.Images(batch)
				encode := func() {
					if err := e.Encode(x, batch); err != nil {
						b.Fatal(err)
					}
					if err := e.dev.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				encode() // warm up: first-touch of buffers, BLAS init, planning
				b.ResetTimer()
				cpu0 := benchstat.CPUTime()
				median, fastest := benchstat.Calls(b, encode)
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(batch)/sec, "img/s")
				b.ReportMetric(flops/sec/1e9, "GFLOP/s")
				// The median call is what the PyTorch script's images_per_s is, and the
				// fastest its images_per_s_best (internal/benchstat says why).
				b.ReportMetric(float64(batch)/median.Seconds(), "img/s-median")
				b.ReportMetric(float64(batch)/fastest.Seconds(), "img/s-best")
				// Images per second of CPU time the process used: what the other
				// processes on the machine barely disturb.
				b.ReportMetric(float64(batch*b.N)/(benchstat.CPUTime()-cpu0).Seconds(), "img/cpu-s")
			})
		}
	}
}

// BenchmarkEncodeLayers splits one batch's time by kind of layer, to show what
// bounds the encoder: pointwise (1x1 GEMM) convolutions, depthwise convolutions,
// the stem (im2col + GEMM), and the rest (upload, residual adds, pooling).
func BenchmarkEncodeLayers(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			e, _ := newKernelEncoder(b, quantModel, batch)
			td := &timingDevice{Device: e.dev, times: map[string]time.Duration{}}
			e.dev = td
			x := benchinput.Images(batch)
			if err := e.Encode(x, batch); err != nil {
				b.Fatal(err)
			}
			clear(td.times)
			pw, dw, st := macs(&e.cfg)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := e.Encode(x, batch); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N)
			for kind, flop := range map[string]int{"pointwise": pw, "depthwise": dw, "stem": st, "other": 0} {
				sec := td.times[kind].Seconds() / n
				b.ReportMetric(sec*1e3, kind+"-ms")
				if flop > 0 {
					b.ReportMetric(2*float64(flop*batch)/sec/1e9, kind+"-GFLOP/s")
				}
			}
		})
	}
}

// timingDevice adds the time of each kernel the encoder calls to times[kind],
// synchronising after each.
type timingDevice struct {
	gpu.Device
	times map[string]time.Duration
}

func (d *timingDevice) timed(kind string, f func()) {
	t0 := time.Now()
	f()
	d.Device.Sync()
	d.times[kind] += time.Since(t0)
}

func (d *timingDevice) Conv2D(out, in, w, bias gpu.Buf, p gpu.ConvParams, act gpu.Act) {
	kind := "pointwise"
	if p.KH > 1 {
		kind = "stem"
	}
	d.timed(kind, func() { d.Device.Conv2D(out, in, w, bias, p, act) })
}

func (d *timingDevice) DepthwiseConv2D(out, in, w, bias gpu.Buf, p gpu.ConvParams, act gpu.Act) {
	d.timed("depthwise", func() { d.Device.DepthwiseConv2D(out, in, w, bias, p, act) })
}

func (d *timingDevice) Upload(dst gpu.Buf, src []float32) {
	d.timed("other", func() { d.Device.Upload(dst, src) })
}

func (d *timingDevice) Add(out, a, b gpu.Buf) { d.timed("other", func() { d.Device.Add(out, a, b) }) }

func (d *timingDevice) GlobalAvgPool(out, in gpu.Buf, n, hw, c int) {
	d.timed("other", func() { d.Device.GlobalAvgPool(out, in, n, hw, c) })
}
