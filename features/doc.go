// Package features is the on-disk cache of encoder features for a dataset: what
// `captioner extract` writes and the decoder's training reads.
//
// # Layout
//
// A store is one folder per encoder, <root>/<encoder ID>/ (see Dir), so features
// of different weights or encoder versions never mix and a stale cache is never
// read: the encoder ID (encoder.Config.ID: the TFLite file's SHA-256 and
// encoder.Version; captioner adds -gojpeg for a build without libjpeg-turbo and
// -tf32 for cuda.tf32, which move the features too) names the folder and is
// recorded in its manifest, which Open checks. One process writes a store at a
// time: Create holds an flock on its lock file until Close. Inside:
//
//	lock           the writers' flock (empty)
//	manifest.json  {"format": "captioner-features/1", "encoder": ID, "dim": 1280,
//	               "grid": [7, 7, 1280] or null}
//	pooled.f32     record r at byte r*dim*4: dim float32, little-endian
//	grid.f16       record r at byte r*49*1280*2: the (7, 7, 1280) grid, IEEE
//	               float16, little-endian (only when the store keeps grids)
//	index.tsv      one line per image: "<record>\t<sha256 of the file>\t<name>\n"
//	stamps.tsv     "<size>\t<modification time, Unix ns>\t<name>\n": each photo's
//	               file as extract last read it, appended when it changes (the
//	               last line of a name holds), so that train and eval tell a
//	               photo replaced since (stamps.go; advisory, absent in stores
//	               made before it)
//	mirrored/      optional (extract --mirror): a store of the same layout, its
//	               manifest "mirrored": true, holding the features of each photo
//	               flipped left to right, keyed by the original file's hash
//	               (train --mirror's data augmentation)
//
// Records are keyed by the SHA-256 of the image file's bytes: an image whose
// content changes gets a new record (its new index line wins for its name), and
// identical files share one. Records are numbered 0, 1, 2, ... in the order first
// written.
//
// # Crash safety and resuming
//
// Each batch appends its records to pooled.f32 (and grid.f16), syncs them, then
// appends and syncs the index lines. A store interrupted mid-batch therefore has
// at most some data past the last indexed record, or a partial last index line;
// opening it for writing truncates both back to the last complete index line, and
// extract skips every image whose content hash is already indexed.
//
// # Why the grid is float16 and optional
//
// The pooled vector (5 KB per image, 36 MB for Flickr8k's 7,091 images) is all
// the merge-LSTM decoder uses, so it is always stored in full precision. The grid
// is 49 times larger (250 KB per image in float32, 1.7 GB for the dataset) and is
// only needed by the attention decoder (train --arch attention reads it with
// LoadGrid), so it is stored only on request (extract --grid) and as float16: its values are ReLU6 outputs in [0, 6], where
// float16's 11-bit mantissa keeps a relative error below 0.05% (an absolute error
// below 0.002), far under the run-to-run noise of training, for half the disk
// space and read bandwidth (870 MB).
package features
