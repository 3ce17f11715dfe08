package train

import (
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu"
)

// average is the exponential moving average of the parameters, which evaluation
// and the saved model use when train.ema is on: it smooths the step-to-step noise
// of the weights, which single epochs' models carry.
type average struct {
	dev     gpu.Device
	decay   float64
	avg     gpu.Buf // (NumParams) the average
	trained gpu.Buf // (NumParams) the trained parameters while the average is swapped in
}

// newAverage starts an average of decay at params.
func newAverage(dev gpu.Device, decay float64, params gpu.Buf) *average {
	a := &average{dev: dev, decay: decay, avg: dev.Alloc(params.Len()), trained: dev.Alloc(params.Len())}
	a.restart(params)
	return a
}

func (a *average) close() {
	a.dev.Free(a.avg)
	a.dev.Free(a.trained)
}

// update folds in the parameters after optimiser step steps:
// avg = d*avg + (1-d)*params. The decay d ramps up over the first steps
// (TensorFlow's ExponentialMovingAverage with num_updates), so the average is not
// dominated by the random initial weights for thousands of steps.
func (a *average) update(params gpu.Buf, steps int) {
	n := float64(steps)
	d := float32(min(a.decay, (1+n)/(10+n)))
	a.dev.Scale(a.avg, d)
	a.dev.Axpy(a.avg, params, 1-d)
}

// swapIn puts the average into m, keeping m's own parameters for swapOut.
func (a *average) swapIn(m *decoder.Model) {
	a.dev.Copy(a.trained, m.Flat())
	m.CopyFrom(a.avg)
}

// swapOut gives m back the parameters that swapIn kept.
func (a *average) swapOut(m *decoder.Model) { m.CopyFrom(a.trained) }

// swapInFlat is swapIn for a parameter buffer that is read in place (the
// fine-tuned encoder's).
func (a *average) swapInFlat(flat gpu.Buf) {
	a.dev.Copy(a.trained, flat)
	a.dev.Copy(flat, a.avg)
}

// swapOutFlat gives flat back the parameters that swapInFlat kept.
func (a *average) swapOutFlat(flat gpu.Buf) { a.dev.Copy(flat, a.trained) }

// set replaces the average with host values (NumParams), as a checkpoint saved them.
func (a *average) set(host []float32) { a.dev.Upload(a.avg, host) }

// restart starts the average over at params.
func (a *average) restart(params gpu.Buf) { a.dev.Copy(a.avg, params) }

// host downloads the average (NumParams).
func (a *average) host() ([]float32, error) {
	host := make([]float32, a.avg.Len())
	return host, a.dev.Download(host, a.avg)
}
