//go:build cgo && staticjpeg

package imgproc

// The staticjpeg tag links libjpeg-turbo's static archive (libturbojpeg0-dev's
// libturbojpeg.a) into the binary, for builds that must run where
// libturbojpeg.so is not installed: the GPU bundle (tags cuda,purecpu,staticjpeg)
// decodes JPEGs 3-4 times as fast as with image/jpeg, which otherwise bounds the
// GPU server (gpu/README.md, "The GPU bundle").

// #cgo LDFLAGS: -l:libturbojpeg.a
import "C"
