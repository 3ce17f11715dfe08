package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/pipeline"
)

func init() {
	cmd := &cobra.Command{
		Use:   "caption [--beam K] [--json] [--attention DIR] IMAGE...",
		Short: "Caption images: one line per image, or a JSON array with --json",
		Long: `Captions each IMAGE with the model in --model (default: the shipped
flickr8k-merge-lstm). Images go through the device in batches of decode.batch_size,
so captioning many photos in one call is fast. With --json the output is one array
[{"image": PATH, "caption": "...", "score": S}, ...]; score is the caption's
length-normalised log-probability (higher is more confident).

With --attention DIR (attention models only) each caption's attention maps go
to DIR/NAME.png, NAME the image's file name without its extension: one panel
per word, the photo lit where the decoder looked when it chose the word.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runCaption,
	}
	f := cmd.Flags()
	f.Int("beam", 3, "beam width (1: greedy)")
	f.Int("max-len", 20, "maximum words per caption")
	f.Bool("json", false, "print a JSON array instead of one caption per line")
	f.String("attention", "", "write each caption's attention maps as a PNG strip into this folder (attention models only)")
	bindOnRun(cmd, map[string]string{"beam": "decode.beam", "max-len": "decode.max_len"})
	rootCmd.AddCommand(cmd)
}

// captionRecord is one element of caption --json.
type captionRecord struct {
	Image   string  `json:"image"`
	Caption string  `json:"caption"`
	Score   float64 `json:"score"`
}

func runCaption(cmd *cobra.Command, paths []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	asJSON, _ := cmd.Flags().GetBool("json")
	attDir, _ := cmd.Flags().GetString("attention")
	var maps *attentionMaps
	if attDir != "" {
		if maps, err = newAttentionMaps(attDir); err != nil {
			return err
		}
	}
	p, err := pipeline.Load(cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	// Decode and caption in chunks of one device batch, so memory stays bounded
	// however many images are named.
	var records []captionRecord
	out := cmd.OutOrStdout()
	for lo := 0; lo < len(paths); lo += cfg.Decode.BatchSize {
		chunk := paths[lo:min(lo+cfg.Decode.BatchSize, len(paths))]
		tensors, err := p.Preprocessor().Files(chunk)
		if err != nil {
			return err
		}
		res, err := p.CaptionImages(cmd.Context(), tensors, pipeline.Options{Attention: maps != nil})
		if err != nil {
			return err
		}
		for i, r := range res {
			if maps != nil {
				if err := maps.write(cmd.ErrOrStderr(), p.Preprocessor(), chunk[i], r); err != nil {
					return err
				}
			}
			if asJSON {
				records = append(records, captionRecord{Image: chunk[i], Caption: r.Caption, Score: r.Score})
				continue
			}
			if len(paths) == 1 {
				fmt.Fprintln(out, r.Caption)
			} else {
				fmt.Fprintf(out, "%s\t%s\n", chunk[i], r.Caption)
			}
		}
	}
	if !asJSON {
		return nil
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(records)
}

// bindOnRun binds cmd's flags to configuration keys when cmd runs rather than at
// init: caption, eval and train share keys (decode.beam, train.data), and viper
// keeps one flag per key, so init-time bindings would let the last command's
// flag shadow the others'.
func bindOnRun(cmd *cobra.Command, flagToKey map[string]string) {
	cmd.PreRun = func(cmd *cobra.Command, _ []string) {
		for name, key := range flagToKey {
			bindFlag(cmd.Flags(), name, key)
		}
	}
}
