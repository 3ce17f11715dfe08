package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/internal/atomicfile"
	"github.com/captioner/captioner/metrics"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/text"
)

func init() {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Caption a dataset split and score it: corpus BLEU-1..4 and CIDEr-D",
		Long: `Captions every image of a split (default: dev) with the model in --model and
prints corpus BLEU-1..4 (coco-caption definition) and CIDEr-D against the split's
reference captions. Features come from the feature cache of captioner extract;
with --from-images the photos go through the encoder instead. The captions are
written as JSON to --captions; --save-scores also writes the scores into the model
folder's scores.json, which caption and serve report.`,
		Args: cobra.NoArgs,
		RunE: runEval,
	}
	f := cmd.Flags()
	f.String("split", text.SplitDev, "dataset split to caption: dev, train or test")
	f.String("captions", "captions.json", "write the captions here as JSON")
	f.Bool("from-images", false, "encode the photos instead of reading cached features")
	f.Bool("save-scores", false, "write the scores into <model>/scores.json")
	f.Int("beam", 3, "beam width (1: greedy)")
	f.String("data", "", "dataset folder or JSON (default: train.data)")
	f.String("features", "", "feature cache root (default: train.features, else extract's)")
	bindOnRun(cmd, map[string]string{"beam": "decode.beam", "data": "train.data", "features": "train.features"})
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
	ds, err := loadDataset(cfg.Assets, cfg.Train.Dataset, cfg.Train.Data)
	if err != nil {
		return err
	}
	mc, err := decoder.ReadConfig(filepath.Join(cfg.Model, decoder.ConfigFile))
	if err != nil {
		return err
	}
	ds.Reclean(mc.Cleaning) // references tokenised as the model's training captions
	imgs, err := ds.Split(splitName)
	if err != nil {
		return err
	}
	var caps []string
	var scores []float64
	if fromImages {
		caps, scores, err = evalFromImages(cmd, imgs)
	} else {
		caps, scores, err = evalFromFeatures(cmd, imgs)
	}
	if err != nil {
		return err
	}
	hyps := make([][]string, len(caps))
	refs := make([][][]string, len(imgs))
	records := make([]captionRecord, len(caps))
	for i, c := range caps {
		hyps[i] = strings.Fields(c)
		refs[i] = imgs[i].Captions
		records[i] = captionRecord{Image: imgs[i].Name, Caption: c, Score: scores[i]}
	}
	bleu := metrics.BLEU(hyps, refs)
	cider, _ := metrics.CIDErD(hyps, refs)
	fmt.Fprintf(cmd.OutOrStdout(), "%s split, %d images, beam %d: BLEU-1 %.4f  BLEU-2 %.4f  BLEU-3 %.4f  BLEU-4 %.4f  CIDEr-D %.4f\n",
		splitName, len(imgs), cfg.Decode.Beam, bleu[0], bleu[1], bleu[2], bleu[3], cider)
	b, err := json.MarshalIndent(records, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(capPath, append(b, '\n')); err != nil {
		return err
	}
	if !saveScores {
		return nil
	}
	s := map[string]float64{"bleu1": bleu[0], "bleu2": bleu[1], "bleu3": bleu[2], "bleu4": bleu[3], "cider_d": cider, "beam": float64(cfg.Decode.Beam)}
	b, err = json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(cfg.Model, pipeline.ScoresFile), append(b, '\n'))
}

// evalFromFeatures decodes cached features of imgs with the model alone.
func evalFromFeatures(cmd *cobra.Command, imgs []text.Image) ([]string, []float64, error) {
	cfg, _ := loadConfig(cmd)
	store, err := openFeatures(cfg.Assets, cfg.Train.Features)
	if err != nil {
		return nil, nil, err
	}
	defer store.Close()
	names := make([]string, len(imgs))
	for i, im := range imgs {
		names[i] = im.Name
	}
	mc, err := decoder.ReadConfig(filepath.Join(cfg.Model, decoder.ConfigFile))
	if err != nil {
		return nil, nil, err
	}
	load := store.LoadPooled
	if mc.Arch == decoder.ArchAttention {
		load = store.LoadGrid
	}
	host, err := load(names)
	if err != nil {
		return nil, nil, err
	}
	dev, err := pipeline.OpenDevice(cfg)
	if err != nil {
		return nil, nil, err
	}
	defer dev.Close()
	vocab, m, err := pipeline.LoadModel(dev, cfg.Model)
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	feats := dev.Alloc(len(host))
	defer dev.Free(feats)
	dev.Upload(feats, host)
	o, err := pipeline.NewDecoding(cfg.Decode, config.MaxBeam).DecodeOptions(pipeline.Options{})
	if err != nil {
		return nil, nil, err
	}
	res, err := pipeline.CaptionFeatures(cmd.Context(), m, feats, len(imgs), o, vocab)
	if err != nil {
		return nil, nil, err
	}
	caps := make([]string, len(res))
	scores := make([]float64, len(res))
	for i, r := range res {
		caps[i], scores[i] = r.Caption, r.Score
	}
	return caps, scores, nil
}

// evalFromImages runs the whole pipeline on the split's photos.
func evalFromImages(cmd *cobra.Command, imgs []text.Image) ([]string, []float64, error) {
	cfg, _ := loadConfig(cmd)
	p, err := pipeline.Load(cfg)
	if err != nil {
		return nil, nil, err
	}
	defer p.Close()
	var caps []string
	var scores []float64
	for lo := 0; lo < len(imgs); lo += cfg.Decode.BatchSize {
		chunk := imgs[lo:min(lo+cfg.Decode.BatchSize, len(imgs))]
		paths := make([]string, len(chunk))
		for i, im := range chunk {
			paths[i] = im.Path
		}
		tensors, err := p.Preprocessor().Files(paths)
		if err != nil {
			return nil, nil, err
		}
		res, err := p.CaptionImages(cmd.Context(), tensors, pipeline.Options{})
		if err != nil {
			return nil, nil, err
		}
		for _, r := range res {
			caps = append(caps, r.Caption)
			scores = append(scores, r.Score)
		}
	}
	if len(caps) != len(imgs) {
		return nil, nil, fmt.Errorf("captioned %d of %d images", len(caps), len(imgs))
	}
	return caps, scores, nil
}
