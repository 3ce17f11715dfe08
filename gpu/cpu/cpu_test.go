package cpu_test

import (
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/gpu/gputest"
)

func TestSuite(t *testing.T) {
	for _, threads := range []int{1, 3} {
		dev := cpu.New(threads)
		t.Run(dev.Name(), func(t *testing.T) { gputest.Run(t, dev) })
		dev.Close()
	}
}

func TestOpen(t *testing.T) {
	dev, err := gpu.Open("cpu", gpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if !strings.HasPrefix(dev.Name(), "cpu (") {
		t.Errorf("Name() = %q, want cpu (...)", dev.Name())
	}
}
