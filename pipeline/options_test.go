package pipeline

import (
	"reflect"
	"testing"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/text"
)

// decodeConfig is the default decode section but for a beam wider than the
// server's cap, so the cap on the default shows.
var decodeConfig = config.Decode{Beam: 5, MaxLen: 20, BatchSize: 32, Alpha: 0.7, NoRepeat: 3, Tags: 4, TagThreshold: 0.25, Guide: true, GuideThreshold: 0.5}

func TestDecodingDefaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxBeam int
		in      Options
		want    Options
	}{
		{"commands: the configuration's beam", config.MaxBeam, Options{}, Options{Beam: 5, MaxLen: 20, Alternatives: 5, Guide: GuideOn, NoRepeat: 3}},
		{"server: the default beam capped at max_beam", 4, Options{}, Options{Beam: 4, MaxLen: 20, Alternatives: 4, Guide: GuideOn, NoRepeat: 3}},
		{"alternatives follow the asked beam", 8, Options{Beam: 2}, Options{Beam: 2, MaxLen: 20, Alternatives: 2, Guide: GuideOn, NoRepeat: 3}},
		{"set fields are kept", 8, Options{Beam: 8, MaxLen: 100, Alternatives: 1, Guide: GuideOff, NoRepeat: 2}, Options{Beam: 8, MaxLen: 100, Alternatives: 1, Guide: GuideOff, NoRepeat: 2}},
		{"repeats allowed", 8, Options{NoRepeat: NoRepeatOff}, Options{Beam: 5, MaxLen: 20, Alternatives: 5, Guide: GuideOn, NoRepeat: NoRepeatOff}},
	} {
		d := NewDecoding(decodeConfig, tc.maxBeam)
		got, err := d.Complete(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: Complete(%+v) = %+v, %v; want %+v", tc.name, tc.in, got, err, tc.want)
		}
		// Completing twice changes nothing: the server completes, Pipeline.Decode again.
		if again, err := d.Complete(got); err != nil || again != got {
			t.Errorf("%s: completing %+v again gave %+v, %v", tc.name, got, again, err)
		}
		plan, err := d.Plan(tc.in)
		want := Plan{DecodeOptions: decoder.DecodeOptions{Start: text.StartID, End: text.EndID, Beam: tc.want.Beam, MaxLen: tc.want.MaxLen,
			NBest: tc.want.Alternatives, Alpha: 0.7, NoRepeat: max(tc.want.NoRepeat, 0)}, Tags: 4, TagThreshold: 0.25, Guide: tc.want.Guide == GuideOn, GuideThreshold: 0.5}
		if err != nil || !reflect.DeepEqual(plan, want) {
			t.Errorf("%s: Plan(%+v) = %+v, %v; want %+v", tc.name, tc.in, plan, err, want)
		}
	}
}

func TestDecodingLimits(t *testing.T) {
	d := NewDecoding(decodeConfig, 8)
	for _, tc := range []struct {
		in   Options
		want string
	}{
		{Options{Beam: 9}, "beam=9 is outside 1..8"},
		{Options{Beam: -1}, "beam=-1 is outside 1..8"},
		{Options{MaxLen: 101}, "max_len=101 is outside 1..100"},
		{Options{Alternatives: 9, Beam: 8}, "alternatives=9 is outside 1..8"},
		{Options{Beam: 2, Alternatives: 3}, "alternatives=3 is more than beam=2: beam search keeps only beam candidates; raise beam or ask for fewer alternatives"},
		{Options{Alternatives: 6}, "alternatives=6 is more than beam=5: beam search keeps only beam candidates; raise beam or ask for fewer alternatives"},
	} {
		if _, err := d.Complete(tc.in); err == nil || err.Error() != tc.want {
			t.Errorf("Complete(%+v): %v, want %q", tc.in, err, tc.want)
		}
		if _, err := d.Plan(tc.in); err == nil || err.Error() != tc.want {
			t.Errorf("Plan(%+v): %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	d := NewDecoding(decodeConfig, 8)
	got, err := d.ParseOptions(map[string]string{"beam": " 3 ", "max_len": "7", "timeout_ms": "not ours"})
	if want := (Options{Beam: 3, MaxLen: 7, Alternatives: 3, Guide: GuideOn, NoRepeat: 3}); err != nil || got != want {
		t.Errorf("beam 3, max_len 7: %+v, %v; want %+v", got, err, want)
	}
	if got, err := d.ParseOptions(nil); err != nil || got != (Options{Beam: 5, MaxLen: 20, Alternatives: 5, Guide: GuideOn, NoRepeat: 3}) {
		t.Errorf("no fields: %+v, %v; want the defaults", got, err)
	}
	for v, want := range map[string]Guide{"0": GuideOff, "1": GuideOn} {
		if got, err := d.ParseOptions(map[string]string{"guide": v}); err != nil || got.Guide != want {
			t.Errorf("guide=%s: %+v, %v; want guide %d", v, got, err, want)
		}
	}
	off := decodeConfig
	off.Guide = false
	if got, err := NewDecoding(off, 8).ParseOptions(nil); err != nil || got.Guide != GuideOff {
		t.Errorf("decode.guide false, no field: %+v, %v; want guide off", got, err)
	}
	// no_repeat=0 allows repeats whatever decode.no_repeat says; 2 asks for pairs.
	for v, want := range map[string]int{"0": 0, "2": 2, "4": 4} {
		got, err := d.ParseOptions(map[string]string{"no_repeat": v})
		plan, perr := d.Plan(got)
		if err != nil || perr != nil || plan.NoRepeat != want {
			t.Errorf("no_repeat=%s: %+v (%v), decoder options %+v (%v); want no-repeat size %d", v, got, err, plan, perr, want)
		}
	}
	off.NoRepeat = 0
	if got, err := NewDecoding(off, 8).ParseOptions(nil); err != nil || got.NoRepeat != NoRepeatOff {
		t.Errorf("decode.no_repeat 0, no field: %+v, %v; want repeats allowed", got, err)
	}
	for v, want := range map[string]bool{"1": true, "0": false} {
		got, err := d.ParseOptions(map[string]string{"attention": v, "beam": "1"})
		dec, derr := d.Plan(got)
		if err != nil || derr != nil || got.Attention != want || dec.Attention != want {
			t.Errorf("attention=%s: %+v (%v), decoder options %+v (%v); want attention %v", v, got, err, dec, derr, want)
		}
	}
	for _, tc := range []struct {
		fields map[string]string
		want   string
	}{
		// Zero is a value a request wrote, not "use the default".
		{map[string]string{"beam": "0"}, "beam=0 is outside 1..8"},
		{map[string]string{"alternatives": "0"}, "alternatives=0 is outside 1..8"},
		{map[string]string{"beam": "three"}, `beam="three" is not a whole number: use 1..8`},
		{map[string]string{"max_len": "2.5"}, `max_len="2.5" is not a whole number: use 1..100`},
		{map[string]string{"max_len": "101"}, "max_len=101 is outside 1..100"},
		{map[string]string{"guide": "2"}, "guide=2 is outside 0..1"},
		{map[string]string{"guide": "yes"}, `guide="yes" is not a whole number: use 0..1`},
		{map[string]string{"attention": "2"}, "attention=2 is outside 0..1"},
		{map[string]string{"no_repeat": "1"}, `no_repeat=1 would forbid any word twice ("a" included): use 0 (repeats allowed) or 2..100`},
		{map[string]string{"no_repeat": "101"}, "no_repeat=101 is outside 0..100"},
		{map[string]string{"attention": "yes"}, `attention="yes" is not a whole number: use 0..1`},
		// An empty model= is not the default model: a client meant to name one.
		{map[string]string{"model": " "}, "model is empty: name a served model (GET /v1/models lists them), or leave model out for the default"},
		// Fields are checked in the order beam, max_len, alternatives.
		{map[string]string{"alternatives": "x", "beam": "99"}, "beam=99 is outside 1..8"},
		{map[string]string{"beam": "2", "alternatives": "3"}, "alternatives=3 is more than beam=2: beam search keeps only beam candidates; raise beam or ask for fewer alternatives"},
	} {
		if _, err := d.ParseOptions(tc.fields); err == nil || err.Error() != tc.want {
			t.Errorf("ParseOptions(%v): %v, want %q", tc.fields, err, tc.want)
		}
	}
}
