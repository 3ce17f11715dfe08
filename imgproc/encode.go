package imgproc

import (
	"image"
	"image/jpeg"
	"io"
)

// EncodeJPEG writes m as a JPEG with 4:2:0 chroma at quality 1..100 (clamped,
// as image/jpeg does), ignoring alpha as image/jpeg does. It uses libjpeg-turbo
// where cgo is available: for the server's 128x96 thumbnails that is about 0.1
// ms against image/jpeg's 0.7-0.9. Otherwise, or when libjpeg-turbo fails (out of
// memory, sides of 64K or more), it is image/jpeg's Encode.
func EncodeJPEG(w io.Writer, m *image.RGBA, quality int) error {
	quality = min(max(quality, 1), 100)
	if b := turboEncodeJPEG(m, quality); b != nil {
		_, err := w.Write(b)
		return err
	}
	return jpeg.Encode(w, m, &jpeg.Options{Quality: quality})
}
