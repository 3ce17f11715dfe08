//go:build cgo && !purecpu && !staticjpeg

package imgproc

// #cgo LDFLAGS: -lturbojpeg
import "C"
