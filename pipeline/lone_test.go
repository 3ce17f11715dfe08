package pipeline

import (
	"context"
	"image"
	"image/color"
	"image/draw"
	"math"
	"slices"
	"strings"
	"testing"

	xdraw "golang.org/x/image/draw"

	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/imgproc"
	"github.com/captioner/captioner/palette"
	"github.com/captioner/captioner/tags"
	"github.com/captioner/captioner/text"
)

func TestObjectCaption(t *testing.T) {
	for _, tc := range []struct {
		top               tags.Tag
		alone             float64
		colours, backdrop string
		want              string
	}{
		{tags.Tag{Noun: "screwdriver", Prob: 0.9}, 0.81, "yellow and gray", "gray", "A yellow and gray screwdriver on a gray background."},
		// Under guidance's threshold the noun is too unsure to write.
		{tags.Tag{Noun: "violin", Prob: 0.71}, 0.98, "orange", "white", "An orange object on a white background."},
		// A noun that takes no article; no colour; no plain backdrop.
		{tags.Tag{Noun: "binoculars", Prob: 0.95}, 0.9, "", "", "Binoculars."},
		{tags.Tag{Noun: "fire truck", Prob: 0.99}, 0.9, "red", "orange", "A red fire truck on an orange background."},
		{tags.Tag{Noun: "modem", Prob: 0.21}, 0.99, "blue", "", "A blue object."},
		{tags.Tag{Noun: "orange", Prob: 0.03}, 0.7, "", "", "An object."},
	} {
		r := objectCaption(tc.top, 0.8, tc.alone, tc.colours, tc.backdrop, 20)
		if r.Caption != tc.want || r.Caption != text.Sentence(r.Tokens) || r.LoneObject != tc.alone {
			t.Errorf("%+v: %q (tokens %q, lone %g), want %q", tc.top, r.Caption, r.Tokens, r.LoneObject, tc.want)
		}
		c := math.Sqrt(tc.alone * float64(tc.top.Prob))
		if math.Abs(r.Confidence-c) > 1e-12 || math.Abs(r.Score-math.Log(c)) > 1e-12 {
			t.Errorf("%+v: confidence %g, score %g; want %g and its log", tc.top, r.Confidence, r.Score, c)
		}
	}
}

// Object and blank captions keep to max_len, dropping the backdrop, then the
// colours, then the article.
func TestShortCaptions(t *testing.T) {
	screwdriver := tags.Tag{Noun: "screwdriver", Prob: 0.9}
	for maxLen, want := range map[int]string{
		9: "A yellow and gray screwdriver on a gray background.",
		8: "A yellow and gray screwdriver.",
		5: "A yellow and gray screwdriver.",
		3: "A screwdriver.",
		1: "Screwdriver.",
	} {
		if got := objectCaption(screwdriver, 0.8, 0.9, "yellow and gray", "gray", maxLen).Caption; got != want {
			t.Errorf("max_len %d: %q, want %q", maxLen, got, want)
		}
	}
	if got := objectCaption(tags.Tag{Noun: "fire truck", Prob: 0.9}, 0.8, 0.9, "red", "", 1).Tokens; !slices.Equal(got, []string{"object"}) {
		t.Errorf("a two-word noun at max_len 1: %q, want object rather than its first word", got)
	}
	if got := blankCaption("gray", 1, 0).Tokens; !slices.Equal(got, []string{"gray"}) {
		t.Errorf("blank at max_len 0: %q, want one word", got)
	}
	for maxLen, want := range map[int]string{4: "A plain white image.", 3: "A white image.", 2: "White image.", 1: "White."} {
		if got := blankCaption("white", 1, maxLen).Caption; got != want {
			t.Errorf("white blank at max_len %d: %q, want %q", maxLen, got, want)
		}
	}
	for maxLen, want := range map[int]string{4: "A very dark image.", 3: "A dark image.", 2: "Dark image.", 1: "Dark."} {
		if got := blankCaption("black", 1, maxLen).Caption; got != want {
			t.Errorf("black blank at max_len %d: %q, want %q", maxLen, got, want)
		}
	}
}

func TestBlankCaption(t *testing.T) {
	for _, sure := range []float64{1, 0.37, 0} {
		r := blankCaption("orange", sure, 20)
		c := max(sure, 1e-3)
		if r.Caption != "A plain orange image." || r.Caption != text.Sentence(r.Tokens) || r.Confidence != c || r.Score != math.Log(c) || r.LoneObject != 0 {
			t.Errorf("blankCaption(orange, %g): %+v", sure, r)
		}
	}
}

// The object's caption takes the decoder's place: its tags kept, and first
// among the alternatives, the decoder's after it.
func TestObjectCaptionInstead(t *testing.T) {
	obj := Result{Caption: "A red car.", Score: -0.1, Confidence: 0.9, LoneObject: 0.9}
	tg := []tags.Tag{{Noun: "car", Prob: 0.9}}
	plain := Result{Caption: "A dog.", Tags: tg, Alternatives: []Alternative{{"A dog.", -1, 0.3}, {"A cat.", -2, 0.2}}}
	got := obj.instead(plain)
	want := []Alternative{{"A red car.", -0.1, 0.9}, {"A dog.", -1, 0.3}, {"A cat.", -2, 0.2}}
	if got.Caption != obj.Caption || !slices.Equal(got.Tags, tg) || !slices.Equal(got.Alternatives, want) {
		t.Errorf("instead: %+v, want the car first of %v with tags %v", got, want, tg)
	}
	// Greedy decoding has no alternatives: the decoder's caption becomes one.
	greedy := obj.instead(Result{Caption: "A dog.", Score: -1, Confidence: 0.3})
	if want := []Alternative{{"A red car.", -0.1, 0.9}, {"A dog.", -1, 0.3}}; !slices.Equal(greedy.Alternatives, want) {
		t.Errorf("instead of a greedy caption: %v, want %v", greedy.Alternatives, want)
	}
}

func TestLivingNoun(t *testing.T) {
	for noun, want := range map[string]bool{"person": true, "dog": true, "bee": true, "screwdriver": false, "car": false, "object": false} {
		if livingNoun(noun) != want {
			t.Errorf("livingNoun(%q) = %v", noun, !want)
		}
	}
}

func TestLoadLoneProbe(t *testing.T) {
	cfg := testConfig(t, "", 1)
	w, err := encoder.LoadDefault(cfg.Assets)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadLoneProbe(w.Config.ID()+"-gojpeg", w.Config.Head)
	if err != nil || len(p.Weight) != 1280 {
		t.Fatalf("the shipped probe for %s: %v", w.Config.ID(), err)
	}
	// No features: the bias alone.
	if got, want := p.Prob(make([]float32, 1280)), 1/(1+math.Exp(-float64(p.Bias))); got != want || p.Bias == 0 {
		t.Errorf("Prob of zeros %g, want sigmoid(bias %g) = %g", got, p.Bias, want)
	}
	if _, err := loadLoneProbe("mobilenet_v2-0123456789abcdef-v2", 1280); err == nil || err.Error() !=
		"pipeline: the lone-object probe was trained on the features of encoder "+p.Encoder+", not mobilenet_v2-0123456789abcdef-v2; retrain it (models/lone-object/MODEL.md)" {
		t.Errorf("another encoder: %v", err)
	}
	if _, err := loadLoneProbe(p.Encoder, 1024); err == nil || err.Error() != "pipeline: the lone-object probe has 1280 weights for the encoder's 1024 features; retrain it for this encoder (models/lone-object/MODEL.md)" {
		t.Errorf("another width: %v", err)
	}
}

// Photos of things alone get the object's caption, with the decoder's among
// the alternatives; a photo of a cat keeps the decoder's; and so does every
// photo with guidance off or attention weights asked for.
func TestLoneObjectCaptions(t *testing.T) {
	p, cfg := loadDefaultDecoding(t, 4)
	paths := []string{"../testdata/ood/tool_screwdriver1.jpg", "../testdata/ood/tuxpaint_violin.jpg", cfg.Assets + "/samples/cat_720p.jpg"}
	imgs, err := p.Preprocessor().Files(paths)
	if err != nil {
		t.Fatal(err)
	}
	imgs = append(imgs, onPage(t, p, "../testdata/ood/world_hedgehog.jpg", 300, 800))
	ctx := context.Background()
	plain, got := plainAndGuidedImages(t, p, imgs)
	withMaps, err := p.CaptionImages(ctx, imgs, Options{Attention: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"A yellow and gray screwdriver on a gray background.", "An object on a white background."} {
		g := got[i]
		if g.Caption != want || g.LoneObject < LoneAbove || len(g.Alternatives) < 2 || g.Alternatives[0].Caption != want {
			t.Errorf("%s: %q (lone %.3f, alternatives %v), want %q", paths[i], g.Caption, g.LoneObject, g.Alternatives, want)
		}
		if !slices.Equal(g.Tags, plain[i].Tags) || g.Alternatives[1].Caption == want {
			t.Errorf("%s: tags %v, alternatives %v; want the plain caption's tags and the decoder's captions after the object's", paths[i], g.Tags, g.Alternatives)
		}
		if plain[i].LoneObject != 0 || strings.Contains(plain[i].Caption, "background") || withMaps[i].LoneObject != 0 || len(withMaps[i].Attention) == 0 {
			t.Errorf("%s: guide=0 gave %q (lone %g), attention %q (lone %g): want the decoder's", paths[i], plain[i].Caption, plain[i].LoneObject, withMaps[i].Caption, withMaps[i].LoneObject)
		}
	}
	if cat := got[2]; cat.LoneObject != 0 || !tags.Mentions(cat.Caption, "cat") {
		t.Errorf("the cat: %q (lone %g), want the decoder's caption of a cat", cat.Caption, cat.LoneObject)
	}
	// A hedgehog 300 px wide on an 800 px white page: the probe takes it for
	// things alone, its top tag, an animal, says otherwise, and the decoder
	// captions it.
	feats, err := p.Encode(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	if h := got[3]; h.LoneObject != 0 || strings.Contains(h.Caption, "background") || len(h.Tags) == 0 || !tags.AnimalNoun(h.Tags[0].Noun) ||
		p.tagger.alone.Prob(meanRegion(feats[3][:len(feats[3])-palette.Len], 1280)) < LoneAbove {
		t.Errorf("the hedgehog on a page: %q (lone %g, tags %v, probe %.3f), want the decoder's caption of a photo the probe takes for things alone",
			h.Caption, h.LoneObject, h.Tags, p.tagger.alone.Prob(meanRegion(feats[3][:len(feats[3])-palette.Len], 1280)))
	}
	// Features without their palette (eval, the trainer) keep the decoder's captions.
	F := len(feats[0]) - palette.Len
	onDevice := p.Device().Alloc(F)
	defer p.Device().Free(onDevice)
	p.Device().Upload(onDevice, feats[0][:F])
	plan, err := p.decoding.Plan(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cached, err := CaptionFeatures(ctx, p.models[0].dec, onDevice, 1, plan)
	if err != nil {
		t.Fatal(err)
	}
	if c := cached[0]; c.LoneObject != 0 || strings.Contains(c.Caption, "background") || !tags.Mentions(c.Caption, "screwdriver") {
		t.Errorf("the screwdriver from cached features: %q (lone %g), want the decoder's guided caption", c.Caption, c.LoneObject)
	}
}

// meanRegion pools a grid (R, F) into its mean region (F), as the encoder does.
func meanRegion(grid []float32, F int) []float32 {
	out := make([]float32, F)
	R := len(grid) / F
	for r := range R {
		for i := range F {
			out[i] += grid[r*F+i] / float32(R)
		}
	}
	return out
}

// A photo of one colour with nothing on it is "A plain COLOUR image.", the
// decoder's caption after it; a dot on it is something, whatever the probe
// makes of it; guide=0 keeps the decoder's.
func TestBlankPhotos(t *testing.T) {
	p, _ := loadDefaultDecoding(t, 4)
	fill := func(c color.RGBA, dot bool) []float32 {
		img := image.NewRGBA(image.Rect(0, 0, 300, 200))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
		}
		if dot {
			for y := 95; y < 105; y++ {
				for x := 145; x < 155; x++ {
					img.Set(x, y, color.RGBA{230, 20, 20, 255})
				}
			}
		}
		x := make([]float32, p.Preprocessor().TensorLen())
		imgproc.ToTensor(x, img, 224)
		return x
	}
	navy := fill(color.RGBA{150, 190, 240, 255}, false) // a navy box on light blue: no blank
	for i := 0; i < len(navy); i += 3 {
		if x, y := (i/3)%224, (i/3)/224; x >= 80 && x < 144 && y >= 80 && y < 144 {
			navy[i], navy[i+1], navy[i+2] = -0.8, -0.7, 0
		}
	}
	imgs := [][]float32{fill(color.RGBA{255, 255, 255, 255}, false), fill(color.RGBA{0, 0, 0, 255}, false), fill(color.RGBA{128, 128, 128, 255}, false), fill(color.RGBA{255, 255, 255, 255}, true), navy}
	plain, got := plainAndGuidedImages(t, p, imgs)
	for i, want := range []string{"A plain white image.", "A very dark image.", "A plain gray image."} {
		if g := got[i]; g.Caption != want || len(g.Alternatives) < 2 || g.Alternatives[0].Caption != want || g.Alternatives[1].Caption == want {
			t.Errorf("blank %d: %q, alternatives %v; want %q, then the decoder's", i, g.Caption, g.Alternatives, want)
		}
		if g := got[i]; g.Alternatives[1].Caption != plain[i].Caption || g.Confidence < 0.999 {
			t.Errorf("blank %d: alternatives %v, confidence %g; want the decoder's caption with guide=0, %q, after the blank's, which is sure", i, g.Alternatives, g.Confidence, plain[i].Caption)
		}
	}
	for i, what := range map[int]string{3: "a red dot on white", 4: "a navy box on light blue"} {
		if c := got[i].Caption; strings.HasPrefix(c, "A plain") {
			t.Errorf("%s: %q, want no blank", what, c)
		}
	}
}

// onPage is the photo at path scaled to width px wide, in the middle of a
// white page side px square, as the encoder's input.
func onPage(t *testing.T, p *Pipeline, path string, width, side int) []float32 {
	t.Helper()
	im, err := p.Preprocessor().File(path)
	if err != nil {
		t.Fatal(err)
	}
	src := im.Decoded
	page := image.NewRGBA(image.Rect(0, 0, side, side))
	draw.Draw(page, page.Bounds(), image.White, image.Point{}, draw.Src)
	b := src.Bounds()
	h := width * b.Dy() / b.Dx()
	at := image.Rect((side-width)/2, (side-h)/2, (side+width)/2, (side+h)/2)
	xdraw.CatmullRom.Scale(page, at, src, b, draw.Over, nil)
	x := make([]float32, p.Preprocessor().TensorLen())
	imgproc.ToTensor(x, page, 224)
	return x
}
