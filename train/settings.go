package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"

	"github.com/captioner/captioner/internal/structdiff"
)

// runSettings are the training settings besides the model's configuration
// that decide what a run trains on and how it picks its model: a resumed run
// must keep them (resume refuses others, naming them). Settings one objective
// does not read are recorded as 0, so changing them refuses nothing.
type runSettings struct {
	BatchSize      int     `json:"batch_size"`
	MaxLen         int     `json:"max_len"`
	FeatureDropout float64 `json:"feature_dropout"`
	Samples        int     `json:"samples"`   // objective cider
	XEWeight       float64 `json:"xe_weight"` // objective cider
	EvalBeam       int     `json:"eval_beam"`
	EMA            float64 `json:"ema"`
	// Features is featuresDigest of the splits' features: another extract
	// (another encoder, photos or grid) is another run.
	Features string `json:"features"`
}

// rates are the optimiser's settings: resuming may change them (a lower
// learning rate is the usual cure for a diverging run), and says so.
type rates struct {
	LR          float64 `json:"lr"`
	LRDecay     float64 `json:"lr_decay"`
	WeightDecay float64 `json:"weight_decay"`
	FinetuneLR  float64 `json:"finetune_lr"`
	Clip        float64 `json:"clip"`
}

func settingsOf(o Options, trn, dv *Split) *runSettings {
	s := &runSettings{BatchSize: o.BatchSize, MaxLen: o.MaxLen, FeatureDropout: o.FeatureDropout,
		EvalBeam: o.EvalBeam, EMA: o.EMA, Features: featuresDigest(trn, dv)}
	if o.Objective == "cider" {
		s.Samples, s.XEWeight = o.Samples, o.XEWeight
	}
	return s
}

func ratesOf(o Options) *rates {
	return &rates{LR: o.LR, LRDecay: o.LRDecay, WeightDecay: o.WeightDecay, FinetuneLR: o.FinetuneLR, Clip: o.Clip}
}

// changes lists the fields in which now differs from was, a struct of the
// same type, as "train.KEY WAS -> NOW" (KEY the field's JSON name, which is
// its configuration key's).
func changes(was, now any) []string {
	var out []string
	for _, f := range structdiff.Fields(was, now) {
		if f.Key == "features" {
			out = append(out, "the features (train.features: another extract's, or other photos)")
			continue
		}
		out = append(out, "train."+f.String())
	}
	return out
}

// featuresDigest hashes the splits' feature matrices: their sizes and every
// 1,009th value, which any other extract changes (a whole grid store is 1.5
// GB: hashing it all would cost seconds at every start).
func featuresDigest(trn, dv *Split) string {
	h := sha256.New()
	var b [8]byte
	for _, m := range [][]float32{trn.Feats, trn.Mirrored, dv.Feats} {
		binary.LittleEndian.PutUint64(b[:], uint64(len(m)))
		h.Write(b[:])
		for i := 0; i < len(m); i += 1009 {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(m[i]))
			h.Write(b[:4])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
