package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/features"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/internal/atomicfile"
	"github.com/captioner/captioner/metrics"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/text"
)

func init() {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Caption a dataset split and score it: corpus BLEU-1..4, CIDEr-D and ROUGE-L",
		Long: `Captions every image of a split (default: dev) with the model in --model and
prints corpus BLEU-1..4, CIDEr-D and ROUGE-L (coco-caption definitions), the
number of distinct captions and of words they use, against the split's
reference captions, tokenised as --references says (standard by default, whatever
the model's cleaning, so that scores compare across models). Features come from the feature cache of captioner extract;
with --from-images the photos go through the encoder instead. Captions are scored
by their tokens (the decoder's words), with guided decoding as decode.guide (--guide)
says. It then sorts the captions into five equal groups by confidence and prints
each group's mean per-caption CIDEr-D and BLEU-4: how well confidence predicts
quality. The captions are written as JSON to --captions (the fields of caption
--json; it is overwritten); --save-scores also writes the scores into the model
folder's scores.json, which serve reports (GET /v1/models): they are the float32
encoder's (the cached features are float32; with --from-images and --save-scores,
precision auto computes in float32 and another precision is refused, while
--from-images alone computes in the precision set, which auto picks by machine).
A model with a fine-tuned encoder (encoder.safetensors) is always evaluated
from the photos, as --from-images.`,
		Args: cobra.NoArgs,
		RunE: runEval,
	}
	f := cmd.Flags()
	f.String("split", text.SplitDev, "dataset split to caption: dev, train or test")
	f.String("captions", "captions.json", "write the captions here as JSON")
	f.Bool("from-images", false, "encode the photos instead of reading cached features")
	f.Bool("save-scores", false, "write the scores into <model>/scores.json")
	f.String("references", string(text.CleaningStandard), "how the references are tokenised: standard (coco-caption: every word kept, \"a\" too; comparable across models) or seed (the seed notebook's cleaning, the old protocol)")
	intFlag(f, "beam", 3, "beam width (1: greedy)")
	f.Bool("guide", true, "guided decoding: captions name the nouns of confident tags (decode.guide)")
	datasetFlags(f)
	f.String("features", "", "feature cache root (default: train.features, else extract's)")
	bindOnRun(cmd, map[string]string{"beam": "decode.beam", "guide": "decode.guide", "data": "train.data", "dataset": "train.dataset", "features": "train.features"})
	rootCmd.AddCommand(cmd)
}

func runEval(cmd *cobra.Command, _ []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	fl := cmd.Flags()
	splitName, _ := fl.GetString("split")
	capPath, _ := fl.GetString("captions")
	fromImages, _ := fl.GetBool("from-images")
	saveScores, _ := fl.GetBool("save-scores")
	// Found before the evaluation, not after it.
	if err := checkOutput("--captions", capPath, captionsOutput); err != nil {
		return err
	}
	if saveScores {
		// A model that is not there is the model's error, said when it loads.
		if st, err := os.Stat(cfg.Model); err == nil && st.IsDir() {
			if err := atomicfile.CanWrite(filepath.Join(cfg.Model, pipeline.ScoresFile)); err != nil {
				return fmt.Errorf("--save-scores writes into the model folder %s: %w; drop --save-scores, or copy the model somewhere writable", cfg.Model, err)
			}
		}
	}
	ds, err := loadDataset(cfg, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	refName, _ := fl.GetString("references")
	refCleaning, err := text.ParseCleaning(refName)
	if err != nil {
		return fmt.Errorf("--references: %w", err)
	}
	// References follow the protocol, not the model's cleaning, so every model
	// is scored alike: a seed model never says "a" and pays for it.
	ds.Reclean(refCleaning)
	imgs, err := ds.Split(splitName)
	if err != nil {
		return err
	}
	var res []pipeline.Result
	if !fromImages && fileExists(filepath.Join(cfg.Model, encoder.TunedFile)) {
		// The cached features are the ImageNet encoder's, not this model's.
		fromImages = true
		fmt.Fprintf(cmd.ErrOrStderr(), "model %s has a fine-tuned encoder (%s): encoding the photos\n", cfg.Model, encoder.TunedFile)
	}
	if saveScores {
		if err := sameScoredImages(cfg.Model, len(imgs)); err != nil {
			return err
		}
	}
	if saveScores && fromImages {
		// scores.json holds what /v1/models and the model card report beside any
		// precision: the float32 encoder's scores, as from cached features.
		switch cfg.Precision {
		case string(gpu.Float32):
		case encoder.PrecisionAuto:
			cfg.Precision = string(gpu.Float32)
		default:
			return fmt.Errorf("--save-scores writes the model's reference scores, which are measured with the encoder in float32, but --precision is %s: drop --precision (or set float32), or drop --save-scores to score %s without saving", cfg.Precision, cfg.Precision)
		}
	}
	precisionNote := "encoder float32 (cached features), decoder float32"
	if fromImages {
		var info pipeline.Info
		res, info, err = evalFromImages(cmd.Context(), cfg, imgs)
		precisionNote = "encoder " + info.Precision + ", decoder " + info.DecoderPrecision
	} else {
		res, err = evalFromFeatures(cmd.Context(), cfg, imgs, cmd.ErrOrStderr())
	}
	if err != nil {
		return err
	}
	hyps := make([][]string, len(res))
	refs := make([][][]string, len(imgs))
	records := make([]captionRecord, len(res))
	guided := 0
	for i, r := range res {
		hyps[i] = r.Tokens
		refs[i] = imgs[i].Captions
		records[i] = captionRecord{Image: imgs[i].Name, Result: r}
		if len(r.Guided) > 0 {
			guided++
		}
	}
	scores, perCaption := metrics.Evaluate(hyps, refs)
	out := cmd.OutOrStdout()
	if _, err := fmt.Fprintf(out, "%s split, %d images, %s references, beam %d, guided decoding %s (%d captions guided), %s: %v\n",
		splitName, len(imgs), refCleaning, cfg.Decode.Beam, onOff(cfg.Decode.Guide), guided, precisionNote, scores); err != nil {
		return fmt.Errorf("writing the scores: %w", err) // a full disk or a closed pipe
	}
	printCalibration(out, calibration(res, hyps, refs, perCaption, calibrationBuckets))
	b, err := json.MarshalIndent(records, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(capPath, append(b, '\n')); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "captions written to %s\n", capPath)
	if !saveScores {
		return nil
	}
	bleu := scores.BLEU
	s := map[string]float64{"bleu1": bleu[0], "bleu2": bleu[1], "bleu3": bleu[2], "bleu4": bleu[3], "cider_d": scores.CIDErD,
		"rouge_l": scores.ROUGEL, "distinct": float64(scores.Distinct), "words": float64(scores.Words), "beam": float64(cfg.Decode.Beam),
		// How many images were scored: a small dev split's scores are not
		// comparable with those of Flickr8k's 1,000 (GET /v1/models lists both).
		"images": float64(len(imgs))}
	b, err = json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	scoresPath := filepath.Join(cfg.Model, pipeline.ScoresFile)
	if err := atomicfile.WriteFile(scoresPath, append(b, '\n')); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "scores written to %s\n", scoresPath)
	return nil
}

// sameScoredImages refuses to replace a model's scores.json with the scores
// of another number of images than it holds: another dataset or split (the
// shipped model's Flickr8k scores were replaced by those of a 4-photo CSV's
// dev split, which serve then reported).
func sameScoredImages(model string, n int) error {
	old, err := pipeline.ReadScores(model)
	if err != nil {
		return err
	}
	if was, ok := old["images"]; ok && int(was) != n {
		return fmt.Errorf("--save-scores: %s holds the scores of %d images, and this evaluation scores %d: another dataset or split's would replace them; drop --save-scores, or delete that file first",
			filepath.Join(model, pipeline.ScoresFile), int(was), n)
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// calibrationBuckets is how many equal-sized groups eval sorts captions into
// by confidence.
const calibrationBuckets = 5

// bucket is one group of captions of similar confidence and how they score.
type bucket struct {
	N            int
	Lo, Hi       float64 // the confidence range
	CIDErD, BLEU float64 // mean per-caption CIDEr-D and BLEU-4
}

// calibration sorts the captions by confidence into n groups of (nearly)
// equal size, least confident first, with each group's mean per-caption
// CIDEr-D (cider, from metrics.CIDErD) and BLEU-4 (each caption scored alone
// against its references): if confidence means anything, the means rise.
func calibration(res []pipeline.Result, hyps [][]string, refs [][][]string, cider []float64, n int) []bucket {
	order := make([]int, len(res))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return res[order[a]].Confidence < res[order[b]].Confidence })
	var out []bucket
	for k := 0; k < n; k++ {
		group := order[k*len(order)/n : (k+1)*len(order)/n]
		if len(group) == 0 {
			continue
		}
		b := bucket{N: len(group), Lo: res[group[0]].Confidence, Hi: res[group[len(group)-1]].Confidence}
		for _, i := range group {
			b.CIDErD += cider[i]
			b.BLEU += metrics.BLEU(hyps[i:i+1], refs[i:i+1])[3]
		}
		b.CIDErD /= float64(len(group))
		b.BLEU /= float64(len(group))
		out = append(out, b)
	}
	return out
}

func printCalibration(w io.Writer, bs []bucket) {
	fmt.Fprintln(w, "confidence            captions  mean CIDEr-D  mean BLEU-4")
	for _, b := range bs {
		fmt.Fprintf(w, "%.3f..%.3f  %12d  %12.4f  %11.4f\n", b.Lo, b.Hi, b.N, b.CIDErD, b.BLEU)
	}
}

// evalFromFeatures decodes cached features of imgs with the model, tagging
// them with the encoder's classifier; photos changed since extract read them
// are warned of on warn.
func evalFromFeatures(ctx context.Context, cfg *config.Config, imgs []text.Image, warn io.Writer) ([]pipeline.Result, error) {
	w, err := encoder.LoadDefault(cfg.Assets)
	if err != nil {
		return nil, err
	}
	mc, _ := decoder.ReadConfig(filepath.Join(cfg.Model, decoder.ConfigFile)) // LoadModel below says what is wrong
	store, err := openFeaturesOf(cfg, &w.Config, mc.Arch == decoder.ArchAttention)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w; or run eval --from-images, which encodes the photos instead of reading them from a cache", err)
	}
	if err != nil {
		return nil, err
	}
	defer store.Close()
	dev, err := pipeline.OpenDevice(cfg)
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	vocab, m, err := pipeline.LoadModel(dev, cfg.Model)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := pipeline.CheckReads(w.Config, m.Cfg, cfg.Model); err != nil {
		return nil, err
	}
	tagger, err := pipeline.NewTagger(dev, w)
	if err != nil {
		return nil, err
	}
	defer tagger.Close()
	plan, err := pipeline.NewDecoding(cfg.Decode, config.MaxBeam).Plan(pipeline.Options{})
	if err != nil {
		return nil, err
	}
	if note := changedPhotos(store, imgs, cfg.Train.Data); note != "" {
		fmt.Fprintf(warn, "warning: %s\n", note)
	}
	res, err := captionCached(ctx, store, pipeline.NewDecoder(m, vocab, tagger), imageNames(imgs), plan)
	return res, missingFeatures(err, imgs, store, cfg.Train.Data, func() (pipeline.Preprocessor, error) {
		return pipeline.NewPreprocessor(w.Config, cfg.Image), nil
	})
}

// cachedChunk is how many images' cached features captionCached has on the
// device at once: the train split's grids would take 1.5 GB together.
const cachedChunk = 1000

// captionCached captions the images names from the feature cache store with
// d, cachedChunk images at a time.
func captionCached(ctx context.Context, store *features.Store, d pipeline.Decoder, names []string, plan pipeline.Plan) ([]pipeline.Result, error) {
	if err := store.HasNames(names); err != nil { // all of them, not a chunk's
		return nil, err
	}
	dev := d.Model.Device()
	out := make([]pipeline.Result, 0, len(names))
	for lo := 0; lo < len(names); lo += cachedChunk {
		chunk := names[lo:min(lo+cachedChunk, len(names))]
		host, err := decoderInputs(store, chunk, d.Model.Cfg.Arch)
		if err != nil {
			return nil, err
		}
		feats := dev.Alloc(len(host))
		dev.Upload(feats, host)
		res, err := pipeline.CaptionFeatures(ctx, d, feats, len(chunk), plan)
		dev.Free(feats)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// evalFromImages runs the whole pipeline on the split's photos, and describes
// the model it ran (the precisions its encoder and decoder computed in).
func evalFromImages(ctx context.Context, cfg *config.Config, imgs []text.Image) ([]pipeline.Result, pipeline.Info, error) {
	c := *cfg
	c.Decode.BatchSize = max(1, min(c.Decode.BatchSize, len(imgs))) // the pipeline's buffers hold a batch
	cfg = &c
	p, err := pipeline.Load(cfg)
	if err != nil {
		return nil, pipeline.Info{}, err
	}
	defer p.Close()
	var out []pipeline.Result
	for lo := 0; lo < len(imgs); lo += cfg.Decode.BatchSize {
		chunk := imgs[lo:min(lo+cfg.Decode.BatchSize, len(imgs))]
		paths := make([]string, len(chunk))
		for i, im := range chunk {
			paths[i] = im.Path
		}
		tensors, err := p.Preprocessor().Files(paths)
		if err != nil {
			return nil, pipeline.Info{}, err
		}
		res, err := p.CaptionImages(ctx, tensors, pipeline.Options{})
		if err != nil {
			return nil, pipeline.Info{}, err
		}
		out = append(out, res...)
	}
	if len(out) != len(imgs) {
		return nil, pipeline.Info{}, fmt.Errorf("captioned %d of %d images", len(out), len(imgs))
	}
	return out, p.Info(), nil
}
