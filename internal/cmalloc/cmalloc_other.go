//go:build !linux || !cgo

package cmalloc

func setMmapThreshold(int) bool { return false }
