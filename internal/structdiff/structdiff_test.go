package structdiff

import (
	"reflect"
	"testing"
)

type sizes struct {
	Arch   string  `json:"arch,omitempty"`
	Hidden int     `json:"hidden"`
	Rate   float32 `json:"rate"`
	Mirror bool    `json:"mirror"`
	Seed   int
}

func TestFields(t *testing.T) {
	was := sizes{Arch: "merge", Hidden: 256, Rate: 0.5}
	now := sizes{Arch: "attention", Hidden: 256, Rate: 0.25, Mirror: true, Seed: 2}
	want := []Field{{"arch", "merge", "attention"}, {"rate", float32(0.5), float32(0.25)}, {"mirror", false, true}, {"Seed", 0, 2}}
	if got := Fields(was, now); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %v, want %v", got, want)
	}
	// Pointers compare what they point to.
	if got := Fields(&was, &now); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields of pointers = %v, want %v", got, want)
	}
	if got := Join(want); got != "arch merge -> attention; rate 0.5 -> 0.25; mirror false -> true; Seed 0 -> 2" {
		t.Errorf("Join = %q", got)
	}
	if got := Fields(was, was); got != nil {
		t.Errorf("equal structs differ in %v", got)
	}
}

func TestFieldsOfTwoTypesPanics(t *testing.T) {
	defer func() {
		if p := recover(); p != "structdiff: structdiff.sizes against struct { Hidden int }" {
			t.Errorf("panic %v", p)
		}
	}()
	Fields(sizes{}, struct{ Hidden int }{})
}
