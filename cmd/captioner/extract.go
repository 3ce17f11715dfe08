package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/features"
	"github.com/captioner/captioner/imgproc"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/progress"
)

func init() {
	cmd := &cobra.Command{
		Use:   "extract",
		Short: "Compute encoder features for a dataset split into the feature cache (resumable)",
		Long: `extract runs the encoder over a dataset's images and stores, per image, the pooled
1280-d feature vector (and with --grid the 7x7x1280 grid, as float16) in a feature
store: <out>/<encoder ID>/, documented in package features. Records are keyed by the
SHA-256 of each image file and the store by the encoder's ID, so changed images are
recomputed and features of other weights are never reused.

With --mirror it stores the features of the photos flipped left to right instead, in
<out>/<encoder ID>/mirrored/: train --mirror's data augmentation (extract --grid
--mirror --split train for the attention decoder).

Interrupt it at any time (Ctrl-C): the next run resumes where it stopped.`,
		Args: cobra.NoArgs,
		RunE: runExtract,
	}
	f := cmd.Flags()
	f.String("split", "all", "which Flickr8k images: all (every image in the images folder), train or dev")
	f.String("images", "", "images folder (default: the assets folder's data/flickr8k/images)")
	f.String("out", "", "feature cache root (default: $XDG_CACHE_HOME/captioner/features/flickr8k)")
	f.Bool("grid", false, "also store the 7x7x1280 grid (float16, 125 KB per image)")
	f.Bool("mirror", false, "store the features of the photos flipped left to right (for train --mirror)")
	f.Int("batch", 0, "images per device batch (default: decode.batch_size)")
	rootCmd.AddCommand(cmd)
}

func runExtract(cmd *cobra.Command, _ []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	fl := cmd.Flags()
	split, _ := fl.GetString("split")
	imagesDir, _ := fl.GetString("images")
	root, _ := fl.GetString("out")
	withGrid, _ := fl.GetBool("grid")
	mirror, _ := fl.GetBool("mirror")
	batch, _ := fl.GetInt("batch")
	if batch <= 0 {
		batch = cfg.Decode.BatchSize
	}
	dir, names, err := datasetImages(cfg.Assets, split, imagesDir)
	if err != nil {
		return err
	}
	if root == "" {
		if root, err = features.DefaultRoot(); err != nil {
			return err
		}
	}
	enc, dev, err := loadEncoder(cfg, batch)
	if err != nil {
		return err
	}
	defer dev.Close()
	defer enc.Close()
	c := enc.Config()
	man := features.Manifest{Encoder: c.ID(), Dim: enc.FeatureDim(), Mirrored: mirror}
	if withGrid {
		g := c.GridSize()
		man.Grid = []int{g, g, c.Head}
	}
	storeDir := features.Dir(root, c.ID())
	if mirror {
		storeDir = features.MirroredDir(storeDir)
	}
	store, err := features.Create(storeDir, man)
	if err != nil {
		return err
	}
	defer store.Close()

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pooled := make([]float32, batch*enc.FeatureDim())
	var grid []float32
	if withGrid {
		grid = make([]float32, batch*enc.GridLen())
	}
	start := time.Now()
	computed, failed, err := fillStore(ctx, cmd.ErrOrStderr(), "extract", store, dir, names, batch, pipeline.NewPreprocessor(c, cfg.Image),
		func(tensors []float32, n int, items []*features.Item) error {
			if mirror {
				for i := 0; i < n; i++ {
					imgproc.MirrorTensor(tensors[i*enc.ImageLen():(i+1)*enc.ImageLen()], c.Input)
				}
			}
			if err := enc.Encode(tensors, n); err != nil {
				return err
			}
			if err := dev.Download(pooled[:n*enc.FeatureDim()], enc.Pooled()); err != nil {
				return err
			}
			if withGrid {
				if err := dev.Download(grid[:n*enc.GridLen()], enc.Grid()); err != nil {
					return err
				}
			}
			for i, it := range items {
				it.Pooled = pooled[i*enc.FeatureDim() : (i+1)*enc.FeatureDim()]
				if withGrid {
					it.Grid = grid[i*enc.GridLen() : (i+1)*enc.GridLen()]
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	rate := float64(computed) / time.Since(start).Seconds()
	fmt.Fprintf(cmd.OutOrStdout(), "features: %s\n%d images (%d computed at %.1f img/s on %s, %d already cached), %d records\n",
		store.Path(), len(names)-failed, computed, rate, dev.Name(), len(names)-failed-computed, store.Len())
	if failed > 0 {
		return fmt.Errorf("%d images could not be read (listed above); the others are stored", failed)
	}
	return nil
}

// fillStore adds to store the records of the images of names (in dir) whose
// content it lacks: encode computes n preprocessed images (n, S, S, 3) and
// fills the items' vectors, which must stay valid until its next call. It
// shows a progress bar named what on log and returns how many images were
// computed and how many could not be read (each reported on log).
func fillStore(ctx context.Context, log io.Writer, what string, store *features.Store, dir string, names []string, batch int,
	pre pipeline.Preprocessor, encode func(tensors []float32, n int, items []*features.Item) error) (computed, failed int, err error) {
	bar := progress.New(log, what, len(names), "img")
	batches := make(chan *extractBatch, 1) // one batch prepared while the device runs another
	go prepareBatches(ctx, batches, dir, names, batch, pre, store)
	done := 0
	for b := range batches {
		for _, e := range b.errs {
			fmt.Fprintf(log, "\n%s: skipping %v\n", what, e)
		}
		failed += len(b.errs)
		if n := b.n; n > 0 {
			items := make([]*features.Item, n)
			for i, k := range b.slots {
				items[i] = &b.items[k]
			}
			if err := encode(b.tensors[:n*pre.TensorLen()], n, items); err != nil {
				return computed, failed, err
			}
			computed += n
		}
		if err := store.Add(b.items); err != nil {
			return computed, failed, err
		}
		done += b.total
		bar.SetStatus("%d computed, %d cached, %d failed", computed, done-computed-failed, failed)
		bar.Add(b.total)
	}
	bar.Finish()
	if ctx.Err() != nil {
		return computed, failed, fmt.Errorf("interrupted after %d of %d images; run the same command again to resume", done, len(names))
	}
	return computed, failed, nil
}

// extractBatch is one group of consecutive images: every readable image gets an
// item (name and content hash); those not yet in the store also get a slot in
// tensors, (n, S, S, 3), and item slots[i] receives image i's features.
type extractBatch struct {
	items   []features.Item
	tensors []float32
	slots   []int
	n       int
	total   int // images of this group, failed ones included
	errs    []error
}

// prepareBatches reads, hashes, decodes and preprocesses the images of names in
// groups of size, in parallel, and sends them on out (closing it at the end or
// when ctx ends). Images whose content the store already has are not decoded.
func prepareBatches(ctx context.Context, out chan<- *extractBatch, dir string, names []string, size int, pre pipeline.Preprocessor, store *features.Store) {
	defer close(out)
	workers := runtime.GOMAXPROCS(0)
	imageLen := pre.TensorLen()
	for lo := 0; lo < len(names); lo += size {
		group := names[lo:min(lo+size, len(names))]
		b := &extractBatch{total: len(group), tensors: make([]float32, len(group)*imageLen)}
		items := make([]features.Item, len(group))
		errs := make([]error, len(group))
		need := make([]bool, len(group))
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					items[i], need[i], errs[i] = prepareImage(b.tensors[i*imageLen:(i+1)*imageLen], dir, group[i], pre, store)
				}
			}()
		}
		for i := range group {
			next <- i
		}
		close(next)
		wg.Wait()
		// Compact: the images to compute come first in tensors, in order.
		for i := range group {
			if errs[i] != nil {
				b.errs = append(b.errs, errs[i])
				continue
			}
			b.items = append(b.items, items[i])
			if need[i] {
				if b.n != i {
					copy(b.tensors[b.n*imageLen:(b.n+1)*imageLen], b.tensors[i*imageLen:(i+1)*imageLen])
				}
				b.slots = append(b.slots, len(b.items)-1)
				b.n++
			}
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return
		}
	}
}

// prepareImage hashes one image file and, unless the store has its content,
// decodes it into dst.
func prepareImage(dst []float32, dir, name string, pre pipeline.Preprocessor, store *features.Store) (features.Item, bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return features.Item{}, false, err
	}
	sum := sha256.Sum256(data)
	it := features.Item{Name: name, Hash: hex.EncodeToString(sum[:])}
	if store.Has(it.Hash) {
		return it, false, nil
	}
	// The same preprocessing as caption and serve, so cached features are theirs.
	im, err := pre.Bytes(data)
	if err != nil {
		return it, false, fmt.Errorf("%s: %w", name, err)
	}
	copy(dst, im.Tensor)
	return it, true, nil
}

// datasetImages returns the images folder and the image names of a Flickr8k split.
func datasetImages(assetsDir, split, imagesDir string) (string, []string, error) {
	store, err := assets.Open(assetsDir)
	if err != nil {
		return "", nil, err
	}
	if imagesDir == "" {
		imagesDir = filepath.Join(store.Dir, filepath.FromSlash(assets.Flickr8kDir), "images")
	}
	var names []string
	switch split {
	case "all":
		entries, err := os.ReadDir(imagesDir)
		if err != nil {
			return "", nil, fmt.Errorf("images folder: %w (run `captioner setup --dataset`, or pass --images)", err)
		}
		for _, e := range entries {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
	case "train", "dev":
		list := map[string]string{"train": "Flickr_8k.trainImages.txt", "dev": "Flickr_8k.devImages.txt"}[split]
		b, err := os.ReadFile(filepath.Join(store.Dir, filepath.FromSlash(assets.Flickr8kDir), list))
		if err != nil {
			return "", nil, fmt.Errorf("split list: %w (run `captioner setup --dataset`)", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				names = append(names, l)
			}
		}
	default:
		return "", nil, fmt.Errorf("--split %q: want all, train or dev", split)
	}
	if len(names) == 0 {
		return "", nil, fmt.Errorf("no images for split %s in %s", split, imagesDir)
	}
	return imagesDir, names, nil
}
