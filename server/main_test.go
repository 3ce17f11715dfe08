package server

import (
	"testing"

	"github.com/captioner/captioner/internal/testassets"
)

func TestMain(m *testing.M) { testassets.Main(m) }
