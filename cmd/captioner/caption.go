package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/pipeline"
)

func init() {
	cmd := &cobra.Command{
		Use:   "caption [--beam K] [--json] [--attention DIR] IMAGE...",
		Short: "Caption images: one line per image, or a JSON array with --json",
		Long: `Captions each IMAGE with the model in --model (default: the shipped
flickr8k-attention; flickr8k-merge-lstm is the smaller, faster one). Images go through the device in batches of decode.batch_size,
so captioning many photos in one call is fast. Captions are sentences, one line
per image: the caption alone for one IMAGE, PATH<tab>caption for several; an
IMAGE of - is read from standard input, and an IMAGE that is a folder stands
for its image files (by extension, in name order; its subfolders' too with
--recursive). With --json
the output is one array
[{"image": PATH, "caption": "Dog runs.", "tokens": ["dog", "runs"], "score": S,
  "confidence": C, "tags": [{"noun", "prob", "label", "label_prob"}, ...],
  "guided": [NOUN, ...], "lone_object": P, "alternatives": [{"caption", "score", "confidence"}, ...]}, ...]:
score is the caption's length-normalised log-probability; confidence, in [0, 1],
the geometric mean of the probabilities of its words (docs/captions.md: what it means);
tags the encoder's ImageNet nouns (decode.tags, decode.tag_threshold); guided the
nouns of confident tags that guided decoding (--guide, decode.guide) made the
caption name; lone_object, only on the caption of a photo of things alone, with
no person or animal, which then names the object, its colours and its plain
backdrop instead of the decoder's sentence, the probability that it is one
(docs/captions.md), and a blank photo (one colour, nothing on it) is "A plain
white image." ("A very dark image." if black); alternatives the beam's captions, best first (the caption is the
first), when it keeps more than one, after the object's or the blank's caption.

An image that cannot be read is reported on its own (on stderr, or with --json
as {"image": PATH, "error": "..."} in its place in the array) and the others
are still captioned; the exit status is then 1.

With --attention DIR (attention models only) each caption's attention maps go
to DIR/NAME.png, NAME the image's file name without its extension: one panel
per word, the photo lit where the decoder looked when it chose the word.`,
		Args: atLeast(1, "image file"),
		RunE: runCaption,
	}
	f := cmd.Flags()
	intFlag(f, "beam", 3, "beam width (1: greedy)")
	intFlag(f, "max-len", 20, "maximum words per caption")
	f.Bool("json", false, "print a JSON array instead of one caption per line")
	f.BoolP("recursive", "r", false, "an IMAGE that is a folder stands for the image files of its subfolders too")
	f.Bool("guide", true, "guided decoding: captions name the nouns of confident tags (decode.guide)")
	f.String("attention", "", "write each caption's attention maps as a PNG strip into this folder, DIR/NAME.png for NAME.jpg (NAME-2.png for a second NAME, or when NAME.png there is not a map captioner drew: a photo, say; attention models only)")
	bindOnRun(cmd, map[string]string{"beam": "decode.beam", "max-len": "decode.max_len", "guide": "decode.guide"})
	rootCmd.AddCommand(cmd)
}

// imagePaths expands caption's IMAGE arguments: a folder stands for its image
// files (folderImages; with recursive, those of its subfolders too,
// treeImages), so that `caption photos/` captions them, and a glob
// that matches a subfolder does not fail on it ("is a directory"). Of a
// folder, only regular files are read: a named pipe would wait for a writer
// forever; those left out are warned of on warn. Anything else stays as
// given (a pipe named on purpose is read); the reader reports what is wrong
// with it.
func imagePaths(args []string, warn io.Writer, recursive bool) ([]string, error) {
	if n := slices.Index(args, "-"); n >= 0 && slices.Contains(args[n+1:], "-") {
		return nil, fmt.Errorf("- (standard input) is given more than once, and holds one photo: give it once")
	}
	var paths []string
	for _, a := range args {
		if st, err := os.Stat(a); a == "-" || err != nil || !st.IsDir() {
			paths = append(paths, a)
			continue
		}
		var files []imageFile
		var err error
		if recursive {
			files, err = treeImages(a, warn)
		} else {
			files, err = folderImages(a, "pass --recursive, or name them too, e.g. "+filepath.Join(a, "*")+string(filepath.Separator), warn)
		}
		if err != nil {
			return nil, err
		}
		before := len(paths)
		for _, f := range files {
			if st, err := os.Stat(f.Path); err == nil && !st.Mode().IsRegular() {
				fmt.Fprintf(warn, "warning: %s is %s, not a photo file: left out\n", f.Path, fileKind(st.Mode()))
				continue
			}
			paths = append(paths, f.Path)
		}
		if len(paths) == before {
			return nil, fmt.Errorf("no photo files in %s: none of the %d named as images is a regular file (see the warnings above)", a, len(files))
		}
	}
	return paths, nil
}

// captionRecord is one element of caption --json (and of eval's captions).
type captionRecord struct {
	Image string `json:"image"`
	pipeline.Result
}

// imageErrorRecord is the element of caption --json for an image that could
// not be read.
type imageErrorRecord struct {
	Image string `json:"image"`
	Error string `json:"error"`
}

// unreadable is the record of the image at path that could not be read
// because of err, which names the file: the record names it already.
func unreadable(path string, err error) imageErrorRecord {
	return imageErrorRecord{Image: path, Error: strings.TrimPrefix(err.Error(), path+": ")}
}

func runCaption(cmd *cobra.Command, args []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	recursive, _ := cmd.Flags().GetBool("recursive")
	paths, err := imagePaths(args, cmd.ErrOrStderr(), recursive)
	if err != nil {
		return err
	}
	// One file named alone gets its caption alone; a folder's, with their paths.
	alone := len(args) == 1 && len(paths) == 1 && paths[0] == args[0]
	asJSON, _ := cmd.Flags().GetBool("json")
	attDir, _ := cmd.Flags().GetString("attention")
	cfg.Decode.BatchSize = min(cfg.Decode.BatchSize, len(paths)) // the pipeline's buffers hold a batch
	p, err := pipeline.Load(cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	var maps *attentionMaps
	if attDir != "" {
		if info := p.Info(); info.Arch != decoder.ArchAttention {
			return fmt.Errorf("--attention draws where an attention model looked, but %s is a %s model, which has no attention weights: leave out --attention, or pass --model %s", cfg.Model, info.Arch, config.DefaultModel)
		}
		if maps, err = newAttentionMaps(attDir); err != nil {
			return err
		}
	}
	// Decode and caption in chunks of one device batch, so memory stays bounded
	// however many images are named. An unreadable image is skipped and
	// reported after the captions of the others.
	records := []any{}
	var failed []error
	out := cmd.OutOrStdout()
	for lo := 0; lo < len(paths); lo += cfg.Decode.BatchSize {
		chunk := paths[lo:min(lo+cfg.Decode.BatchSize, len(paths))]
		chunkRecords := make([]any, len(chunk)) // in the order of the arguments
		var read []int                          // chunk indices of the images read
		var tensors [][]float32
		for i, path := range chunk {
			im, err := p.Preprocessor().File(path)
			if err != nil {
				failed = append(failed, err) // it names the file
				chunkRecords[i] = unreadable(path, err)
				continue
			}
			read = append(read, i)
			tensors = append(tensors, im.Tensor)
		}
		var res []pipeline.Result
		if len(tensors) > 0 {
			if res, err = p.CaptionImages(cmd.Context(), tensors, pipeline.Options{Attention: maps != nil}); err != nil {
				return err
			}
		}
		for k, r := range res {
			path := chunk[read[k]]
			if maps != nil {
				if err := maps.write(cmd.ErrOrStderr(), p.Preprocessor(), path, r); err != nil {
					return err
				}
			}
			chunkRecords[read[k]] = captionRecord{Image: path, Result: r}
			var werr error
			switch {
			case asJSON:
			case alone:
				_, werr = fmt.Fprintln(out, r.Caption)
			default:
				_, werr = fmt.Fprintf(out, "%s\t%s\n", path, r.Caption)
			}
			if werr != nil { // a full disk or a closed pipe: the captions would be lost unsaid
				return fmt.Errorf("writing the captions: %w", werr)
			}
		}
		records = append(records, chunkRecords...)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(records); err != nil {
			return err
		}
	} else {
		for _, e := range failed {
			fmt.Fprintln(cmd.ErrOrStderr(), "caption:", e)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d images could not be read", len(failed), len(paths))
	}
	return nil
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
