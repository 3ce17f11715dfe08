//go:build cuda

package gpucheck

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
)

var (
	profileOut    = flag.String("check.profile-out", "", "write TestEncoderProfile's table as JSON to this file")
	profileBatch  = flag.Int("check.profile-batch", 64, "TestEncoderProfile's batch size")
	profilePasses = flag.Int("check.profile-passes", 5, "TestEncoderProfile's timed passes")
)

// timed is a device whose encoder kernels are each timed alone: a Sync before
// and after every call, so a call's time is its own. The sum is more than an
// unsynchronised pass takes (launches no longer overlap the previous kernel),
// but the shares say which layers an optimisation should start with.
type timed struct {
	gpu.Device
	t     *testing.T
	calls map[string]*opTime
}

// opTime is the time of every call of one kernel at one shape: over the
// timed passes while they run, a pass's after.
type opTime struct {
	Op    string  `json:"op"`
	Calls int     `json:"calls"`
	MS    float64 `json:"ms"`
}

func (d *timed) time(op string, call func()) {
	if err := d.Device.Sync(); err != nil {
		d.t.Fatal(err)
	}
	t0 := time.Now()
	call()
	if err := d.Device.Sync(); err != nil {
		d.t.Fatal(err)
	}
	o := d.calls[op]
	if o == nil {
		o = &opTime{Op: op}
		d.calls[op] = o
	}
	o.Calls++
	o.MS += float64(time.Since(t0).Microseconds()) / 1000
}

func convShape(p gpu.ConvParams) string {
	return fmt.Sprintf("%dx%d s%d %dx%dx%d->%d", p.KH, p.KW, p.StrideH, p.H, p.W, p.C, p.OC)
}

func (d *timed) Conv2D(out, in, weight, bias gpu.Buf, p gpu.ConvParams, act gpu.Act) {
	d.time("Conv2D "+convShape(p), func() { d.Device.Conv2D(out, in, weight, bias, p, act) })
}

func (d *timed) DepthwiseConv2D(out, in, weight, bias gpu.Buf, p gpu.ConvParams, act gpu.Act) {
	d.time("DepthwiseConv2D "+convShape(p), func() { d.Device.DepthwiseConv2D(out, in, weight, bias, p, act) })
}

func (d *timed) GlobalAvgPool(out, in gpu.Buf, n, hw, c int) {
	d.time(fmt.Sprintf("GlobalAvgPool %dx%d", hw, c), func() { d.Device.GlobalAvgPool(out, in, n, hw, c) })
}

func (d *timed) Add(out, a, b gpu.Buf) {
	d.time(fmt.Sprintf("Add %d", out.Len()), func() { d.Device.Add(out, a, b) })
}

func (d *timed) Copy(dst, src gpu.Buf) {
	d.time(fmt.Sprintf("Copy %d", dst.Len()), func() { d.Device.Copy(dst, src) })
}

// TestEncoderProfile times MobileNetV2's kernels on the GPU, each call alone,
// at -check.profile-batch images (float32), and writes the table: where the
// encoder's time goes, for the next optimisation to start at the top.
func TestEncoderProfile(t *testing.T) {
	dev, err := gpu.Open("cuda", gpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	w, err := encoder.LoadDefault(os.Getenv("CAPTIONER_ASSETS"))
	if err != nil {
		t.Fatal(err)
	}
	batch, passes := *profileBatch, *profilePasses
	td := &timed{Device: dev, t: t, calls: map[string]*opTime{}}
	encode, done := warmEncoder(t, td, w, batch)
	defer done()
	clear(td.calls)
	for range passes {
		encode()
	}
	ops := make([]*opTime, 0, len(td.calls))
	var total float64 // ms a pass
	for _, o := range td.calls {
		o.Calls /= passes
		o.MS /= float64(passes)
		ops = append(ops, o)
		total += o.MS
	}
	slices.SortFunc(ops, func(a, b *opTime) int { return cmp.Compare(b.MS, a.MS) })
	// The same passes on the device itself, unsynchronised: what they take.
	plain, donePlain := warmEncoder(t, dev, w, batch)
	defer donePlain()
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for range passes {
		plain()
	}
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
	passMS := float64(time.Since(t0).Microseconds()) / 1000 / float64(passes)
	var table strings.Builder
	fmt.Fprintf(&table, "encoder at batch %d, %d passes: %.2f ms a pass unsynchronised, %.2f ms with every kernel timed alone\n",
		batch, passes, passMS, total)
	fmt.Fprintf(&table, "| kernel and shape (KxK stride, HxWxC->OC) | calls a pass | ms a pass | share |\n| --- | --- | --- | --- |\n")
	for _, o := range ops {
		fmt.Fprintf(&table, "| %s | %d | %.3f | %.1f%% |\n", o.Op, o.Calls, o.MS, 100*o.MS/total)
	}
	t.Log("\n" + table.String())
	if *profileOut != "" {
		b, err := json.MarshalIndent(map[string]any{"batch": batch, "passes": passes, "pass_ms": passMS,
			"timed_ms": total, "ops": ops}, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*profileOut, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
