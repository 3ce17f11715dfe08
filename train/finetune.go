package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/safetensors"
)

// tunedEncoder is the encoder's top (train.finetune_blocks blocks and the
// head) trained with the decoder. The splits hold each image's activations at
// the cut (computed once and cached by the caller), so a step runs only the
// top: on the batch's distinct images, whose features then go to each of
// their captions; the decoder's gradient with respect to those features
// (TrainState.InputGrad) comes back the same way.
type tunedEncoder struct {
	dev      gpu.Device
	top      *encoder.Top
	base     encoder.Config // the weights the run started from, for SaveTuned
	pooled   bool           // the decoder reads pooled features (merge), not the grid
	regions  int            // G*G
	head     int            // F
	inDim    int            // the decoder's input per image: F, or G*G*F
	cutLen   int
	maxBatch int

	trainCuts, devCuts gpu.Buf // (train images, cutLen), (dev images, cutLen)
	batchCut           gpu.Buf // (maxBatch, cutLen) a step's distinct images
	pool               gpu.Buf // (maxBatch, F) their pooled features (merge)
	dsrc, dgrid        gpu.Buf // (maxBatch, inDim), (maxBatch, G*G*F) gradients
	ones               gpu.Buf // (G*G) ones: broadcasts a pooled gradient over the grid

	local []int32 // the last step's captions' rows among its distinct images
	n     int     // the last step's distinct images

	// avg, with train.ema, averages the top's parameters as run.avg does the
	// decoder's: evaluation and the saved model use both averages.
	avg *average
}

// newTunedEncoder uploads the cut activations of both splits and makes the
// top of w from block first for batches of up to maxBatch captions.
func newTunedEncoder(dev gpu.Device, w *encoder.Weights, first, maxBatch int, pooled bool, trn, dv *Split) (*tunedEncoder, error) {
	c := w.Config
	top, err := encoder.NewTop(dev, w, first, maxBatch)
	if err != nil {
		return nil, err
	}
	g := c.GridSize()
	te := &tunedEncoder{dev: dev, top: top, base: c, pooled: pooled, regions: g * g, head: c.Head,
		inDim: g * g * c.Head, cutLen: c.CutLen(first), maxBatch: maxBatch}
	te.base.Tuned = ""
	if pooled {
		te.inDim = c.Head
	}
	if len(trn.Feats) != trn.Images()*te.cutLen || len(dv.Feats) != dv.Images()*te.cutLen {
		top.Close()
		return nil, fmt.Errorf("train: the splits hold %d and %d values, not the activations at block %d (%d per image) of %d and %d images",
			len(trn.Feats), len(dv.Feats), first, te.cutLen, trn.Images(), dv.Images())
	}
	te.trainCuts, te.devCuts = dev.Alloc(len(trn.Feats)), dev.Alloc(len(dv.Feats))
	dev.Upload(te.trainCuts, trn.Feats)
	dev.Upload(te.devCuts, dv.Feats)
	te.batchCut, te.pool = dev.Alloc(maxBatch*te.cutLen), dev.Alloc(maxBatch*c.Head)
	te.dsrc, te.dgrid = dev.Alloc(maxBatch*te.inDim), dev.Alloc(maxBatch*te.regions*c.Head)
	te.ones = dev.Alloc(te.regions)
	gpu.Ones(dev, te.ones)
	return te, nil
}

func (te *tunedEncoder) close() {
	if te.avg != nil {
		te.avg.close()
	}
	te.top.Close()
	for _, b := range []gpu.Buf{te.trainCuts, te.devCuts, te.batchCut, te.pool, te.dsrc, te.dgrid, te.ones} {
		te.dev.Free(b)
	}
}

// encode runs the top on n images' cut activations (n, cutLen) and returns
// their features as the decoder reads them, (n, inDim).
func (te *tunedEncoder) encode(cut gpu.Buf, n int) gpu.Buf {
	grid := te.top.Forward(cut, n)
	if !te.pooled {
		return grid
	}
	p := te.pool.Slice(0, n*te.head)
	te.dev.GlobalAvgPool(p, grid, n, te.regions, te.head)
	return p
}

// features computes the features of a batch of captions of the training
// images images, into the front of out, keeping what backward needs.
func (te *tunedEncoder) features(images []int32, out gpu.Buf) gpu.Buf {
	rowOf := map[int32]int32{}
	var rows []int32
	te.local = make([]int32, len(images))
	for b, img := range images {
		r, ok := rowOf[img]
		if !ok {
			r = int32(len(rows))
			rowOf[img] = r
			rows = append(rows, img)
		}
		te.local[b] = r
	}
	te.n = len(rows)
	cut := te.batchCut.Slice(0, te.n*te.cutLen)
	te.dev.EmbeddingForward(cut, te.trainCuts, rows, te.cutLen)
	src := te.encode(cut, te.n)
	feats := out.Slice(0, len(images)*te.inDim)
	te.dev.EmbeddingForward(feats, src, te.local, te.inDim)
	return feats
}

// backward adds the top's gradients from dfeats (B, inDim), the gradient of
// the features features returned: each image collects its captions' share;
// the pooled features spread theirs evenly over the grid.
func (te *tunedEncoder) backward(dfeats gpu.Buf) {
	dev, n := te.dev, te.n
	dsrc := te.dsrc.Slice(0, n*te.inDim)
	dev.Zero(dsrc)
	dev.EmbeddingBackward(dsrc, dfeats, te.local, te.inDim)
	dgrid := dsrc
	if te.pooled { // dgrid_i (G*G, F) = ones (G*G, 1) · dpooled_i (1, F) / (G*G)
		R, F := te.regions, te.head
		dgrid = te.dgrid.Slice(0, n*R*F)
		dev.GemmStridedBatched(false, false, R, F, 1, 1/float32(R), te.ones, 1, 0, dsrc, F, F, 0, dgrid, F, R*F, n)
	}
	te.top.Backward(dgrid)
}

// step is TrainState.Step for the decoder and the top together: both clipped
// to clip separately (their gradients differ in scale) and updated, the top
// with Adam at rate lr and the decoder's other settings.
func (te *tunedEncoder) step(ts *decoder.TrainState, clip float64, adam decoder.Adam, lr float32, forward func() error) error {
	ts.ZeroGrad()
	te.top.ZeroGrad()
	if err := forward(); err != nil {
		return err
	}
	ts.Backward()
	te.backward(ts.InputGrad())
	if _, err := ts.ClipGradNorm(clip); err != nil {
		return err
	}
	if _, err := te.top.ClipGradNorm(clip); err != nil {
		return err
	}
	ts.Update(adam)
	te.top.Update(lr, adam.Beta1, adam.Beta2, adam.Eps, adam.WeightDecay)
	return nil
}

// swapIn puts the average into the top (with train.ema), keeping the trained
// parameters for swapOut.
func (te *tunedEncoder) swapIn() {
	if te.avg != nil {
		te.avg.swapInFlat(te.top.Flat())
	}
}

// swapOut gives the top back the parameters that swapIn kept.
func (te *tunedEncoder) swapOut() {
	if te.avg != nil {
		te.avg.swapOutFlat(te.top.Flat())
	}
}

// encodeDev writes the dev images' features under the current top into dst
// (dev images, inDim), for the evaluation.
func (te *tunedEncoder) encodeDev(dst gpu.Buf) {
	n := te.devCuts.Len() / te.cutLen
	for lo := 0; lo < n; lo += te.maxBatch {
		k := min(te.maxBatch, n-lo)
		src := te.encode(te.devCuts.Slice(lo*te.cutLen, k*te.cutLen), k)
		te.dev.Copy(dst.Slice(lo*te.inDim, k*te.inDim), src)
	}
}

// save writes the top's layers into the model folder dir (encoder.TunedFile).
func (te *tunedEncoder) save(dir string) error {
	ts, err := te.top.Tensors()
	if err != nil {
		return err
	}
	return encoder.SaveTuned(filepath.Join(dir, encoder.TunedFile), te.base, te.top.First(), ts)
}

// encoderCheckpoint is the file beside the checkpoint of epoch that holds the
// fine-tuned top's parameters, Adam moments and step count. Each epoch's is
// written before the checkpoint and the previous one removed after it, so the
// checkpoint's own is there whenever a run stops.
func encoderCheckpoint(out string, epoch int) string {
	return filepath.Join(out, fmt.Sprintf(encoderCheckpointName, epoch))
}

// encoderCheckpointName is the name of an epoch's encoder checkpoint file
// (%d: the epoch).
const encoderCheckpointName = "encoder-checkpoint-%d.safetensors"

// isEncoderCheckpoint says whether name is an epoch's encoder checkpoint's.
func isEncoderCheckpoint(name string) bool {
	var epoch int
	n, err := fmt.Sscanf(name, encoderCheckpointName, &epoch)
	return err == nil && n == 1 && name == fmt.Sprintf(encoderCheckpointName, epoch)
}

func (te *tunedEncoder) saveCheckpoint(path string, epoch int) error {
	flat, m1, m2, steps, err := te.top.State()
	if err != nil {
		return err
	}
	n := []int{len(flat)}
	ts := []safetensors.Tensor{safetensors.FromFloat32("params", n, flat), safetensors.FromFloat32("adam.m", n, m1), safetensors.FromFloat32("adam.v", n, m2)}
	if te.avg != nil {
		avg, err := te.avg.host()
		if err != nil {
			return err
		}
		ts = append(ts, safetensors.FromFloat32("ema", n, avg))
	}
	return safetensors.WriteFile(path, ts, map[string]string{"epoch": strconv.Itoa(epoch), "steps": strconv.Itoa(steps), "first": strconv.Itoa(te.top.First())})
}

// resume restores the top from the file saveCheckpoint wrote with the
// checkpoint of epoch.
func (te *tunedEncoder) resume(path string, epoch int) error {
	f, err := safetensors.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("train: the checkpoint of epoch %d fine-tunes the encoder, but %s is missing; start over in another --out", epoch, path)
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	meta := f.Metadata
	if meta["epoch"] != strconv.Itoa(epoch) || meta["first"] != strconv.Itoa(te.top.First()) {
		return fmt.Errorf("train: %s is of epoch %s from block %s, the checkpoint of epoch %d from block %d; start over in another --out", path, meta["epoch"], meta["first"], epoch, te.top.First())
	}
	steps, err := strconv.Atoi(meta["steps"])
	if err != nil {
		return fmt.Errorf("train: %s: bad step count %q", path, meta["steps"])
	}
	n := te.top.NumParams()
	var vs [3][]float32
	for i, name := range []string{"params", "adam.m", "adam.v"} {
		if vs[i], err = f.Float32(name, n); err != nil {
			return fmt.Errorf("train: %s: %w", path, err)
		}
	}
	if err := te.top.SetState(vs[0], vs[1], vs[2], steps); err != nil {
		return err
	}
	if te.avg != nil {
		if avg, err := f.Float32("ema", n); err == nil {
			te.avg.set(avg)
		} else {
			te.avg.restart(te.top.Flat()) // a run resumed with train.ema newly on
		}
	}
	return nil
}
