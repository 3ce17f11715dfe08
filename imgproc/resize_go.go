//go:build !cgo

package imgproc

import "image"

// rgbaFast: without cgo the RGBA path is the Go one.
func (s *scratch) rgbaFast(dst []float32, m *image.RGBA, size int) { s.rgba(dst, m, size) }
