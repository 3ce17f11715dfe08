package metrics

import (
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/internal/testassets"
	"github.com/captioner/captioner/text"
)

// BenchmarkEvaluateFlickr8kDev scores one human caption of each Flickr8k dev
// image against the other four (cleaned as the notebook does): the speed of an
// eval pass over the dev split, and a reference for what people achieve.
func BenchmarkEvaluateFlickr8kDev(b *testing.B) {
	assets := testassets.Dir(b, "the benchmark scores the Flickr8k dev captions")
	d, err := text.LoadFlickr8k(filepath.Join(assets, "data/flickr8k"))
	if err != nil {
		b.Fatal(err)
	}
	dev, err := d.Split(text.SplitDev)
	if err != nil {
		b.Fatal(err)
	}
	var cands [][]string
	var refs [][][]string
	for _, img := range dev {
		cands = append(cands, img.Captions[0])
		refs = append(refs, img.Captions[1:])
	}
	var s Scores
	for b.Loop() {
		s, _ = Evaluate(cands, refs)
	}
	b.ReportMetric(float64(len(dev)*b.N)/b.Elapsed().Seconds(), "images/s")
	b.Logf("human caption 0 vs captions 1-4, %d dev images: %v", len(dev), s)
}
