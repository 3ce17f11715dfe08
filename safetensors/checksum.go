package safetensors

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
)

// ChecksumKey is the metadata entry that holds a file's Checksum, where the
// writer recorded one.
const ChecksumKey = "sha256"

// Checksum hashes everything a file holds but its checksum: every tensor's
// name, dtype, shape and data in file order, then every other metadata entry
// in key order. Names, values and lengths are quoted or counted, so no byte
// can pass from one field into the next unnoticed.
func Checksum(ts []Tensor, meta map[string]string) string {
	h := sha256.New()
	for _, t := range ts {
		fmt.Fprintf(h, "%q %s %v %d\n", t.Name, t.DType, t.Shape, len(t.Data))
		h.Write(t.Data)
	}
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		if k != ChecksumKey {
			fmt.Fprintf(h, "%q=%q\n", k, meta[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WithChecksum returns meta (copied) with ts's and its own Checksum recorded.
func WithChecksum(ts []Tensor, meta map[string]string) map[string]string {
	out := maps.Clone(meta)
	if out == nil {
		out = map[string]string{}
	}
	out[ChecksumKey] = Checksum(ts, out)
	return out
}
