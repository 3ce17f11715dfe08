package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/features"
	"github.com/captioner/captioner/imgproc"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/progress"
	"github.com/captioner/captioner/text"
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
	f.String("split", "all", "which images: all (every photo of the dataset when --data or train.data names one, else every image file in the images folder), or the dataset's train, dev or test split")
	f.String("images", "", "images folder (default: the dataset's: --data's photos, else the assets folder's data/flickr8k/images)")
	datasetFlags(f)
	f.String("out", "", "feature cache root (default: $XDG_CACHE_HOME/captioner/features/flickr8k, or features/NAME-HASH for --data's dataset)")
	f.Bool("grid", false, "also store the 7x7x1280 grid (float16, 125 KB per image)")
	f.Bool("mirror", false, "store the features of the photos flipped left to right (for train --mirror)")
	intFlag(f, "batch", 0, "images per device batch (default: decode.batch_size)")
	bindOnRun(cmd, map[string]string{"data": "train.data", "dataset": "train.dataset"})
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
	if imagesDir != "" && root == "" && cfg.Train.Data == "" {
		// The default root is Flickr8k's cache, whose records a photo of the
		// same file name would take over.
		return fmt.Errorf("extract: --images %s without --data or --out would write into the Flickr8k feature cache; give --out DIR for a folder of photos of your own (train and eval then read it with --features DIR)", imagesDir)
	}
	switch {
	case batch < 0 || batch > config.MaxBatchSize:
		return fmt.Errorf("extract: --batch %d is outside 1..%d (0: decode.batch_size, %d)", batch, config.MaxBatchSize, cfg.Decode.BatchSize)
	case batch == 0:
		batch = cfg.Decode.BatchSize
	}
	files, from, err := extractImages(cfg, split, imagesDir, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	batch = max(1, min(batch, len(files))) // the encoder's buffers hold a batch
	fmt.Fprintf(cmd.ErrOrStderr(), "extract: %d images: %s\n", len(files), from)
	if root, err = featureRoot(root, cfg.Train.Data); err != nil {
		return err
	}
	enc, dev, err := loadEncoder(cfg, batch)
	if err != nil {
		return err
	}
	defer dev.Close()
	defer enc.Close()
	c := enc.Config()
	id := featuresID(cfg, &c)
	man := features.Manifest{Encoder: id, Dim: enc.FeatureDim(), Mirrored: mirror}
	if withGrid {
		g := c.GridSize()
		man.Grid = []int{g, g, c.Head}
	}
	storeDir := features.Dir(root, id)
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
	computed, failed, err := fillStore(ctx, cmd.ErrOrStderr(), "extract", store, files, batch, pipeline.NewPreprocessor(c, cfg.Image),
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
	done := "none computed" // all cached: a rate of 0.0 img/s read as a fault
	if computed > 0 {
		done = fmt.Sprintf("%d computed at %.1f img/s on %s", computed, float64(computed)/time.Since(start).Seconds(), dev.Name())
	}
	fmt.Fprintf(cmd.OutOrStdout(), "features: %s\n%d images (%s, %d already cached), %d records\n",
		store.Path(), len(files)-failed, done, len(files)-failed-computed, store.Len())
	switch {
	case failed == len(files) && imagesDir != "":
		// A split names the dataset's photos (Flickr8k's without --data):
		// none of them in the folder is a wrong folder or dataset.
		return fmt.Errorf("none of the %d images could be read (the first listed above): is %s the folder of the dataset's photos? For a folder of photos of your own, pass --split all (every photo in it), or --data with their dataset", len(files), imagesDir)
	case failed > 0:
		return fmt.Errorf("%d of %d images could not be read (the first listed above); the others are stored; replace those files, or take their images out of the dataset (their lines in the token file and split lists, their rows in the CSV, or their entries in the JSON): train and eval refuse images that never had features, use the features stored earlier for a name whose file has changed since, and extract reports them again on every run", failed, len(files))
	}
	return nil
}

// imageFile is a photo to compute: its name in the feature store, the
// dataset's name for it, by which train and eval look its features up, and
// where it is.
type imageFile struct{ Name, Path string }

// shownFailures is how many unreadable images fillStore names; the rest it
// counts: a wrong folder would otherwise print a line for each of thousands.
const shownFailures = 10

// fillStore adds to store the records of the images of files whose content it
// lacks: encode computes n preprocessed images (n, S, S, 3) and fills the
// items' vectors, which must stay valid until its next call. It shows a
// progress bar named what on log and returns how many images were computed
// and how many could not be read (the first shownFailures named on log).
func fillStore(ctx context.Context, log io.Writer, what string, store *features.Store, files []imageFile, batch int,
	pre pipeline.Preprocessor, encode func(tensors []float32, n int, items []*features.Item) error) (computed, failed int, err error) {
	bar := progress.New(log, what, len(files), "img")
	batches := make(chan *extractBatch, 1) // one batch prepared while the device runs another
	// Returning on an error cancels the preparing goroutine, which would
	// otherwise wait forever to hand over its next batch.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go prepareBatches(ctx, batches, files, batch, pre, store)
	done := 0
	for b := range batches {
		for i, e := range b.errs {
			switch n := failed + i; {
			case n < shownFailures:
				fmt.Fprintf(log, "\n%s: skipping %v\n", what, e)
			case n == shownFailures:
				fmt.Fprintf(log, "\n%s: more images cannot be read; counting them without naming them\n", what)
			}
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
		return computed, failed, fmt.Errorf("interrupted after %d of %d images; run the same command again to resume", done, len(files))
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

// prepareBatches reads, hashes, decodes and preprocesses the images of files in
// groups of size, in parallel, and sends them on out (closing it at the end or
// when ctx ends). Images whose content the store already has are not decoded.
func prepareBatches(ctx context.Context, out chan<- *extractBatch, files []imageFile, size int, pre pipeline.Preprocessor, store *features.Store) {
	defer close(out)
	workers := runtime.GOMAXPROCS(0)
	imageLen := pre.TensorLen()
	computing := map[string]bool{} // content hashes of the images sent to compute
	for lo := 0; lo < len(files); lo += size {
		group := files[lo:min(lo+size, len(files))]
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
					items[i], need[i], errs[i] = prepareImage(b.tensors[i*imageLen:(i+1)*imageLen], group[i], pre, store)
				}
			}()
		}
		for i := range group {
			next <- i
		}
		close(next)
		wg.Wait()
		// Compact: the images to compute come first in tensors, in order;
		// one whose content an earlier image has (of this group or an earlier
		// one, which fillStore adds first) is not computed again: the store
		// gives both names that image's record.
		for i := range group {
			if errs[i] != nil {
				b.errs = append(b.errs, errs[i])
				continue
			}
			b.items = append(b.items, items[i])
			if need[i] && !computing[items[i].Hash] {
				computing[items[i].Hash] = true
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
// decodes it into dst. It reads image files alone: a pipe (which open would
// wait on forever) or a device in the folder is an unreadable image, and so
// is a file larger, or starting otherwise, than an image within the limits
// (/dev/zero linked as a .jpg was read until memory ran out).
func prepareImage(dst []float32, f imageFile, pre pipeline.Preprocessor, store *features.Store) (features.Item, bool, error) {
	st, err := os.Stat(f.Path)
	if err != nil {
		return features.Item{}, false, err
	}
	if !st.Mode().IsRegular() {
		return features.Item{}, false, fmt.Errorf("%s is %s, not an image file: move it out of the images folder", f.Path, fileKind(st.Mode()))
	}
	data, err := pre.ReadFile(f.Path)
	if err != nil {
		return features.Item{}, false, err
	}
	it := features.Item{Name: f.Name, Stamp: features.StampOf(st)}
	it.Hash, _ = contentHash(bytes.NewReader(data)) // a bytes.Reader reads without errors
	if store.Has(it.Hash) {
		return it, false, nil
	}
	// The same preprocessing as caption and serve, so cached features are theirs.
	im, err := pre.Bytes(data)
	if err != nil {
		return it, false, fmt.Errorf("%s: %w", f.Path, err)
	}
	copy(dst, im.Tensor)
	return it, true, nil
}

// contentHash is the key of a photo's features in a store: the hex SHA-256 of
// its file's bytes, read from r.
func contentHash(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileKind names what a file that is not a regular one is, for errors.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// extractImages lists the photos extract computes and says where they come
// from. Split all is every photo of the dataset train.data names (every
// split's), or without one every image file in a folder: --images, else the
// assets folder's Flickr8k photos. A split name is that split of the
// configured dataset (train.dataset, train.data; the assets' Flickr8k when
// train.data is empty). A dataset's photos are read from --images when given
// (with --data and --images, split all had listed the folder's files by bare
// name, which the dataset's names, "photos/a.jpg", did not match).
func extractImages(cfg *config.Config, split, imagesDir string, warn io.Writer) ([]imageFile, string, error) {
	if split == "all" && cfg.Train.Data == "" {
		if imagesDir == "" {
			store, err := assets.Open(cfg.Assets)
			if err != nil {
				return nil, "", err
			}
			imagesDir = filepath.Join(store.Dir, filepath.FromSlash(assets.Flickr8kDir), "images")
		}
		files, err := folderImages(imagesDir, "give --images one of them, or --data a dataset that lists the photos in them", warn)
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("images folder: %w (run `captioner setup --dataset`, or pass --images)", err)
		}
		return files, "every image file in " + imagesDir, err
	}
	ds, err := loadDataset(cfg, warn)
	if err != nil {
		return nil, "", err
	}
	var imgs []text.Image
	switch split {
	case "all":
		for _, s := range []string{text.SplitTrain, text.SplitDev, text.SplitTest} {
			imgs = append(imgs, ds.Splits[s]...)
		}
	case text.SplitTrain, text.SplitDev, text.SplitTest:
		if imgs, err = ds.Split(split); err != nil {
			return nil, "", err
		}
	default:
		return nil, "", fmt.Errorf("--split %q: want all, train, dev or test", split)
	}
	files := imageFiles(imgs)
	if imagesDir != "" {
		for i, img := range imgs {
			// The photo's path below the dataset's image root: a Karpathy
			// file's path from its folder, a CSV's or a Flickr8k folder's
			// name (a CSV's absolute path stays as it is).
			rel := filepath.FromSlash(img.Name)
			switch cfg.Train.Dataset {
			case "karpathy":
				if rel, err = filepath.Rel(filepath.Dir(cfg.Train.Data), img.Path); err != nil {
					return nil, "", err
				}
			case "csv":
				if filepath.IsAbs(rel) {
					continue
				}
			}
			files[i].Path = filepath.Join(imagesDir, rel)
		}
	}
	from := fmt.Sprintf("split %s of dataset %s", split, ds.Name)
	if cfg.Train.Data != "" {
		from += " (" + cfg.Train.Data + ")"
	}
	if imagesDir != "" {
		from += ", photos from " + imagesDir
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("no images in %s", from)
	}
	return files, from, nil
}

// imageFiles are the photos of a dataset's images, where the dataset says.
func imageFiles(imgs []text.Image) []imageFile {
	files := make([]imageFile, len(imgs))
	for i, img := range imgs {
		files[i] = imageFile{Name: img.Name, Path: img.Path}
	}
	return files
}

// treeImages lists the image files of dir and of its subfolders, in
// filepath.WalkDir's order (by path). dir itself may be a link to a folder;
// links below it are not followed, so a loop of them ends. Hidden folders
// (".thumbnails", a NAS's "@eaDir") hold copies, not photos: left out. A
// subfolder it cannot read is warned of on warn and left out.
func treeImages(dir string, warn io.Writer) ([]imageFile, error) {
	var files []imageFile
	root := dir + string(filepath.Separator) // followed when a link
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil && path != root:
			fmt.Fprintf(warn, "warning: %v: left out\n", err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		case err != nil:
			return err
		case d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "@")):
			return fs.SkipDir
		case !d.IsDir() && text.IsImageName(d.Name()):
			files = append(files, imageFile{Name: d.Name(), Path: path})
		}
		return nil
	})
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no image files in %s nor its subfolders (hidden ones left out)", dir)
	}
	return files, err
}

// folderImages lists the image files of dir (by extension, text.IsImageName),
// sorted by name. It leaves out dir's subfolders, and says so on warn with
// howSubfolders, each caller's advice on reaching them; no image file is an
// error, "no image files in DIR", with that advice when it has subfolders.
func folderImages(dir, howSubfolders string, warn io.Writer) ([]imageFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []imageFile
	subfolders := 0
	for _, e := range entries {
		switch {
		case e.IsDir():
			subfolders++
		case text.IsImageName(e.Name()):
			files = append(files, imageFile{Name: e.Name(), Path: filepath.Join(dir, e.Name())})
		}
	}
	switch {
	case len(files) == 0 && subfolders > 0:
		return nil, fmt.Errorf("no image files in %s, whose %d subfolders are not searched: %s", dir, subfolders, howSubfolders)
	case len(files) == 0:
		return nil, fmt.Errorf("no image files in %s", dir)
	case subfolders > 0:
		fmt.Fprintf(warn, "warning: %s has %d subfolders, not searched: %s\n", dir, subfolders, howSubfolders)
	}
	return files, nil
}
