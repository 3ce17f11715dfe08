package selector

import (
	"testing"

	"github.com/captioner/captioner/config"
)

// The hand-over variable is one of captioner's own, so the configuration's
// check of CAPTIONER_* names (config.UnknownEnv) must not take it for a
// misspelt setting; config lists it by name, and this ties the two.
func TestHandoverEnvIsKnownToConfig(t *testing.T) {
	if u := config.UnknownEnv([]string{HandoverEnv}); len(u) != 0 {
		t.Errorf("config.UnknownEnv(%s) = %q: add it to config's otherEnv", HandoverEnv, u)
	}
}
