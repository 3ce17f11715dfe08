package pipeline

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/internal/testmodel"
)

// planted counts, over a device and its forks, the allocations (the at-th
// panics: a model folder no check foresaw), the devices opened and closed,
// and the convolution chains planned and closed.
type planted struct {
	at, allocs      int
	opened          []gpu.Device
	closed          map[gpu.Device]bool
	planned, closes int
}

// plantedDevice is a device with a planted panic, recording into s.
type plantedDevice struct {
	gpu.Device
	s *planted
}

// plantedPlanner is a plantedDevice of a device that plans convolution
// chains (the CPU with oneDNN): the chains it plans count their Close.
type plantedPlanner struct {
	plantedDevice
	gpu.ConvPlanner
}

type countedChain struct {
	gpu.ConvChain
	s *planted
}

func (s *planted) wrap(d gpu.Device) gpu.Device {
	s.opened = append(s.opened, d)
	pd := plantedDevice{d, s}
	if p, ok := d.(gpu.ConvPlanner); ok {
		return plantedPlanner{pd, p}
	}
	return pd
}

func (d plantedDevice) Alloc(n int) gpu.Buf {
	if d.s.allocs++; d.s.allocs == d.s.at {
		panic(fmt.Sprintf("planted panic at allocation %d", d.s.at))
	}
	return d.Device.Alloc(n)
}

func (d plantedDevice) Fork() (gpu.Device, error) {
	f, err := d.Device.(gpu.Forker).Fork()
	if err != nil {
		return nil, err
	}
	return d.s.wrap(f), nil
}

func (d plantedDevice) Close() error {
	d.s.closed[d.Device] = true
	return d.Device.Close()
}

func (p plantedPlanner) PlanConvChain(layers []gpu.ConvLayer, maxBatch int, prec gpu.Precision) (gpu.ConvChain, error) {
	c, err := p.ConvPlanner.PlanConvChain(layers, maxBatch, prec)
	if err != nil {
		return nil, err
	}
	p.s.planned++
	return countedChain{c, p.s}, nil
}

func (c countedChain) Close() {
	c.s.closes++
	c.ConvChain.Close()
}

// TestLoadThatPanicsClosesWhatItGot: a load that panics part-way (the server
// recovers it and keeps serving its old models) closes both devices, which
// on CUDA frees the context and all its memory, and the convolution chains
// it planned, which are C memory on the CPU; a load that returns keeps them
// open. The panic is planted at each allocation of a whole load, of a merge and
// an attention model, in turn.
func TestLoadThatPanicsClosesWhatItGot(t *testing.T) {
	cfg := testConfig(t, testModel(t), 4)
	cfg.Precision = "float32" // the decoders' weights stay float32 on the wrapper, which packs none
	att := testmodel.Attention(t, filepath.Join(cfg.Model, VocabFile), "attention-test")
	load := func(at int) (s *planted, panicked any) {
		s = &planted{at: at, closed: map[gpu.Device]bool{}}
		defer func() { panicked = recover() }()
		p, err := loadOn(s.wrap(cpu.New(2)), cfg, []string{att})
		if err != nil {
			t.Fatalf("load with a panic planted at allocation %d: %v", at, err)
		}
		if len(s.closed) > 0 || s.closes > 0 {
			t.Errorf("a load that returned closed %d of its %d devices and %d of its %d chains", len(s.closed), len(s.opened), s.closes, s.planned)
		}
		p.Close()
		return s, nil
	}
	whole, _ := load(0)
	if len(whole.opened) != 2 || whole.allocs < 5 {
		t.Fatalf("the whole load opened %d devices and allocated %d buffers: the test does not see the load", len(whole.opened), whole.allocs)
	}
	for at := 1; at <= whole.allocs; at++ {
		s, panicked := load(at)
		if want := fmt.Sprintf("planted panic at allocation %d", at); panicked != want {
			t.Errorf("panic planted at allocation %d of %d: recovered %v", at, whole.allocs, panicked)
			continue
		}
		for _, d := range s.opened {
			if !s.closed[d] {
				t.Errorf("panic at allocation %d of %d: device %s left open (%d opened)", at, whole.allocs, d.Name(), len(s.opened))
			}
		}
		if s.closes != s.planned {
			t.Errorf("panic at allocation %d of %d: %d of the %d chains planned were closed", at, whole.allocs, s.closes, s.planned)
		}
	}
}
