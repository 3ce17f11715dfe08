package imgproc

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/captioner/captioner/internal/hostile"
)

// readJPEGLayout counts the scans image/jpeg decodes, and only those: not a
// marker inside a segment's payload, not a restart marker or a stuffed byte
// in entropy-coded data.
func TestReadJPEGLayout(t *testing.T) {
	baseline := encodeJPEG(t, blocksImage("AB", "CD")) // image/jpeg writes 4:2:0
	prog := hostile.ProgressiveJPEG(40, 24, 3)
	// An APP1 whose payload holds what looks like a scan (an embedded thumbnail's SOS).
	fakeSOS := []byte{0xff, 0xe1, 0, 12, 'X', 'M', 'P', 0, 0xff, 0xda, 0, 8, 1, 1}
	// Fill bytes and stray data between segments, as image/jpeg tolerates.
	fill := []byte{0xff, 0xff, 0xff}
	sos := bytes.Index(prog, []byte{0xff, 0xda})
	withFill := append(append(append([]byte{}, prog[:sos]...), fill...), prog[sos:]...)
	// A restart marker and a stuffed 0xff inside the first scan's data.
	data := sos + 2 + 8
	withRST := append(append(append([]byte{}, prog[:data]...), 0xff, 0xd0, 0xff, 0x00), prog[data:]...)
	grey := []jpegComponent{{1, 1, 1}}
	for _, tc := range []struct {
		name string
		data []byte
		want jpegLayout
	}{
		{"baseline 4:2:0", baseline, jpegLayout{width: 32, height: 32, comps: []jpegComponent{{1, 2, 2}, {2, 1, 1}, {3, 1, 1}}, scans: 1, scanSamples: 32*32 + 2*16*16}},
		{"progressive", prog, jpegLayout{width: 40, height: 24, progressive: true, comps: grey, scans: 3, scanSamples: 3 * 40 * 24}},
		{"marker in a payload", withSegments(prog, fakeSOS), jpegLayout{width: 40, height: 24, progressive: true, comps: grey, scans: 3, scanSamples: 3 * 40 * 24}},
		{"fill bytes", withFill, jpegLayout{width: 40, height: 24, progressive: true, comps: grey, scans: 3, scanSamples: 3 * 40 * 24}},
		{"restart and stuffed bytes", withRST, jpegLayout{width: 40, height: 24, progressive: true, comps: grey, scans: 3, scanSamples: 3 * 40 * 24}},
		// The last scan header is cut: it counts, its samples cannot be known.
		{"cut in the last scan header", prog[:bytes.LastIndex(prog, []byte{0xff, 0xda})+4], jpegLayout{width: 40, height: 24, progressive: true, comps: grey, scans: 3, scanSamples: 2 * 40 * 24}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := readJPEGLayout(tc.data)
			if !ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, %v; want %+v", got, ok, tc.want)
			}
		})
	}
	if l, ok := readJPEGLayout([]byte{0xff, 0xd8, 0xff, 0xd9}); ok {
		t.Errorf("no frame: got %+v, ok", l)
	}
}
