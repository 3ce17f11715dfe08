//go:build cgo && !purecpu

package imgproc

import (
	"fmt"
	"image"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestRGBAFastMatchesGo checks resize.c against the Go RGBA path it replaces
// (scratch.rgba) on photos and on random premultiplied RGBA of awkward shapes:
// single rows and columns, images smaller than the tensor (enlarging), and a
// sub-image whose rows do not start at the buffer's. They do the same float32
// operations in the same order, so they agree bit for bit in a default build;
// the tolerance is for a Go compiler that fuses multiply-adds (GOAMD64=v3).
func TestRGBAFastMatchesGo(t *testing.T) {
	imgs := map[string]*image.RGBA{}
	for _, path := range append(fullresPhotos(t)[:3], filepath.Join(assets(t), "samples/grace_hopper.bmp")) {
		img, _, err := DecodeFileAtLeast(path, testLimits, 1<<20) // libjpeg-turbo at full scale: *image.RGBA
		if err != nil {
			t.Fatal(err)
		}
		m, ok := img.(*image.RGBA)
		if !ok {
			t.Fatalf("%s decodes to %T, want *image.RGBA", path, img)
		}
		imgs[filepath.Base(path)] = m
	}
	r := rand.New(rand.NewPCG(9, 10))
	for _, wh := range [][2]int{{1, 1}, {1, 57}, {57, 1}, {3, 300}, {300, 7}, {61, 43}, {224, 224}, {450, 333}} {
		m := randomImages(r, wh[0], wh[1])["rgba"].(*image.RGBA)
		imgs[fmt.Sprintf("random %dx%d", wh[0], wh[1])] = m
	}
	imgs["sub-image"] = imgs["random 450x333"].SubImage(image.Rect(13, 7, 401, 300)).(*image.RGBA)
	for name, m := range imgs {
		for _, size := range []int{224, 1, 5, 97} {
			want := make([]float32, size*size*3)
			got := make([]float32, size*size*3)
			new(scratch).rgba(want, m, size)
			ToTensor(got, m, size)
			d := maxDiff(got, want)
			if d > 1e-4 {
				t.Errorf("%s %v -> %d: C differs from Go by %g", name, m.Rect, size, d)
			} else if d > 0 {
				t.Logf("%s %v -> %d: C differs from Go by %g", name, m.Rect, size, d)
			}
		}
	}
}
