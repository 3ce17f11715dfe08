package imgproc

import (
	"fmt"
	"testing"

	"github.com/captioner/captioner/internal/hostile"
)

// BenchmarkHostile decodes the costliest images the default limits let
// through, for the figures in Limits' comment:
//
//	go test ./imgproc -run '^$' -bench Hostile -benchtime 1x -benchmem
func BenchmarkHostile(b *testing.B) {
	for _, bc := range []struct {
		name string
		data []byte
	}{
		// At the pixel limit a greyscale progressive JPEG may have 31 scans over
		// the whole image (MaxScanPasses), and takes 5 bytes a pixel.
		{"jpeg-31-scans-8000x6250", hostile.ProgressiveJPEG(8000, 6250, 31)},
		// A small one may have MaxScans.
		{"jpeg-500-scans-800x500", hostile.ProgressiveJPEG(800, 500, MaxScans)},
		// At the byte limit: 8 bytes a pixel.
		{"png-rgb16-5792x5792", hostile.ZeroPNG(5792, 5792, 16, 2)},
		// At the pixel limit: 4 bytes a pixel.
		{"png-rgba8-7071x7071", hostile.ZeroPNG(7071, 7071, 8, 6)},
	} {
		h, err := ReadHeader(bc.data)
		if err != nil {
			b.Fatal(err)
		}
		for _, minSide := range []int{fullSize, MinDecodeSide(224)} {
			b.Run(fmt.Sprintf("%s/minSide=%d", bc.name, minSide), func(b *testing.B) {
				b.ReportMetric(float64(h.Cost(minSide))/(1<<20), "cost-MiB")
				for b.Loop() {
					if _, _, err := decodeBytes(bc.data, defaultLimits, minSide); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
