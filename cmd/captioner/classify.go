package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/pipeline"
)

func init() {
	cmd := &cobra.Command{
		Use:   "classify [--top N] [--json] IMAGE...",
		Short: "Print the ImageNet top-N labels and probabilities of images (the encoder's own classifier)",
		Long: `classify runs the encoder (MobileNetV2) with its ImageNet classifier: 1001 classes,
index 0 = background. An IMAGE of - is read from standard input, and an IMAGE
that is a folder stands for its image files, as with caption. With --json it prints one JSON array, an element per image
in order: [{"image": PATH, "labels": [{"label": "...", "index": N, "prob": P}, ...]},
..., or {"image": PATH, "error": "..."} for an image that could not be read].

It computes in float32 whatever precision says: these are the reference
probabilities (the tags of caption and serve, in the precision they run, may
differ from them in the second or third digit).

An image that cannot be read is reported on stderr and the others are still
classified; the exit status is then 1.`,
		Args: atLeast(1, "image file"),
		RunE: runClassify,
	}
	intFlag(cmd.Flags(), "top", 5, "labels per image")
	cmd.Flags().Bool("json", false, "print JSON instead of text")
	cmd.Flags().BoolP("recursive", "r", false, "an IMAGE that is a folder stands for the image files of its subfolders too")
	rootCmd.AddCommand(cmd)
}

// classLabel is one line of classify's output.
type classLabel struct {
	Label string  `json:"label"`
	Index int     `json:"index"`
	Prob  float32 `json:"prob"`
}

type classResult struct {
	Image  string       `json:"image"`
	Labels []classLabel `json:"labels"`
}

func runClassify(cmd *cobra.Command, paths []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	recursive, _ := cmd.Flags().GetBool("recursive")
	if paths, err = imagePaths(paths, cmd.ErrOrStderr(), recursive); err != nil {
		return err
	}
	top, _ := cmd.Flags().GetInt("top")
	asJSON, _ := cmd.Flags().GetBool("json")
	batch := min(cfg.Decode.BatchSize, len(paths))
	enc, dev, err := loadEncoder(cfg, batch)
	if err != nil {
		return err
	}
	defer dev.Close()
	defer enc.Close()
	classes := enc.Config().Classes
	if top < 1 || top > classes {
		return fmt.Errorf("--top %d: want 1..%d", top, classes)
	}
	store, err := assets.Open(cfg.Assets)
	if err != nil {
		return err
	}
	labelsPath, err := store.Path(assets.ImageNetLabels)
	if err != nil {
		return err
	}
	labels, err := encoder.LoadLabels(labelsPath, classes)
	if err != nil {
		return err
	}

	pre := pipeline.NewPreprocessor(enc.Config(), cfg.Image)
	var records []any // classResult, or imageErrorRecord for an image not read, in the arguments' order
	var failed []error
	tensors := make([]float32, batch*enc.ImageLen())
	idx := make([]int32, batch*top)
	val := make([]float32, batch*top)
	for lo := 0; lo < len(paths); lo += batch {
		chunk := paths[lo:min(lo+batch, len(paths))]
		chunkRecords := make([]any, len(chunk))
		var read []int // chunk indices of the images read
		for i, p := range chunk {
			im, err := pre.File(p)
			if err != nil {
				failed = append(failed, err) // it names the file
				chunkRecords[i] = unreadable(p, err)
				continue
			}
			n := len(read)
			copy(tensors[n*enc.ImageLen():(n+1)*enc.ImageLen()], im.Tensor)
			read = append(read, i)
		}
		if n := len(read); n > 0 {
			if err := enc.Encode(tensors[:n*enc.ImageLen()], n); err != nil {
				return err
			}
			if err := dev.TopK(idx[:n*top], val[:n*top], enc.Classify(), n, classes, top); err != nil {
				return err
			}
		}
		for k, i := range read {
			r := classResult{Image: chunk[i]}
			for j := 0; j < top; j++ {
				c := int(idx[k*top+j])
				r.Labels = append(r.Labels, classLabel{Label: labels[c], Index: c, Prob: val[k*top+j]})
			}
			chunkRecords[i] = r
		}
		records = append(records, chunkRecords...)
	}
	if err := printClassify(cmd.OutOrStdout(), records, asJSON); err != nil {
		return err
	}
	for _, e := range failed {
		fmt.Fprintln(cmd.ErrOrStderr(), "classify:", e)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d images could not be read", len(failed), len(paths))
	}
	return nil
}

// printClassify prints records (classResult, imageErrorRecord): as JSON, all
// of them, in order; as text, the labels of the images read (the others are
// reported on stderr).
func printClassify(w io.Writer, records []any, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(records, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var b strings.Builder
	for _, rec := range records {
		r, ok := rec.(classResult)
		if !ok {
			continue
		}
		fmt.Fprintln(&b, r.Image)
		for _, l := range r.Labels {
			fmt.Fprintf(&b, "  %6.4f  %s (%d)\n", l.Prob, l.Label, l.Index)
		}
	}
	_, err := io.WriteString(w, b.String()) // one write, one error: a full disk had been reported per line
	return err
}
