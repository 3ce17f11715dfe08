package imgproc

import (
	"encoding/binary"
	"image"
	"image/draw"
)

// jpegOrientation returns the EXIF Orientation tag (1..8) of a JPEG file, or 1
// when there is none or the EXIF data is malformed: a broken tag must not make
// an otherwise decodable photo fail.
//
// It walks the marker segments after SOI up to the first SOS. Each segment is
// 0xFF, marker, 2-byte big-endian length (including itself), payload.
func jpegOrientation(b []byte) int {
	if len(b) < 2 || b[0] != 0xff || b[1] != 0xd8 {
		return 1
	}
	p := 2
	for p+4 <= len(b) {
		if b[p] != 0xff {
			return 1
		}
		marker := b[p+1]
		switch {
		case marker == 0xff: // fill byte before a marker
			p++
			continue
		case marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7): // TEM, RSTn: no length
			p += 2
			continue
		case marker == 0xda || marker == 0xd9: // SOS, EOI: EXIF comes before these
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[p+2:]))
		if n < 2 || p+2+n > len(b) {
			return 1
		}
		seg := b[p+4 : p+2+n]
		if marker == 0xe1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := exifOrientation(seg[6:]); o != 0 {
				return o
			}
		}
		p += 2 + n
	}
	return 1
}

// pngOrientation returns the EXIF Orientation of a PNG file's eXIf chunk (a
// TIFF structure, as after JPEG's "Exif\0\0"), or 1 when there is none. Each
// chunk is a 4-byte big-endian length, a 4-byte type, the data and a CRC.
func pngOrientation(b []byte) int {
	for p := 8; p+8 <= len(b); {
		n := int64(binary.BigEndian.Uint32(b[p:]))
		typ, data := string(b[p+4:p+8]), int64(p+8)
		if data+n > int64(len(b)) || typ == "IEND" {
			return 1
		}
		if typ == "eXIf" {
			if o := exifOrientation(b[data : data+n]); o != 0 {
				return o
			}
			return 1
		}
		p = int(data + n + 4)
	}
	return 1
}

// webpChunk returns the data of a WebP file's first chunk named fourCC. After
// "RIFF", its size and "WEBP", each chunk is a FourCC, a 4-byte little-endian
// size and the data, padded to an even length.
func webpChunk(b []byte, fourCC string) ([]byte, bool) {
	for p := 12; p+8 <= len(b); {
		n := int64(binary.LittleEndian.Uint32(b[p+4:]))
		data := int64(p + 8)
		if data+n > int64(len(b)) {
			return nil, false
		}
		if string(b[p:p+4]) == fourCC {
			return b[data : data+n], true
		}
		p = int(data + n + n%2)
	}
	return nil, false
}

// webpOrientation returns the EXIF Orientation of a WebP file's EXIF chunk (a
// TIFF structure, which some writers prefix "Exif\0\0"), or 1 when there is
// none.
func webpOrientation(b []byte) int {
	t, ok := webpChunk(b, "EXIF")
	if !ok {
		return 1
	}
	if len(t) >= 6 && string(t[:6]) == "Exif\x00\x00" {
		t = t[6:]
	}
	if o := exifOrientation(t); o != 0 {
		return o
	}
	return 1
}

// exifOrientation reads tag 0x0112 from IFD0 of a TIFF structure (the EXIF
// payload after "Exif\0\0"): byte order "II" or "MM", 42, offset of IFD0; IFD0
// is a 2-byte entry count then 12-byte entries (tag, type, count, value).
// It returns 0 when the tag is absent or invalid.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(t[2:]) != 42 {
		return 0
	}
	ifd := int64(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 0
	}
	count := int64(bo.Uint16(t[ifd:]))
	for i := int64(0); i < count; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 0
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		// Type 3 is SHORT, as the standard says; a single SHORT sits in the
		// first 2 bytes of the value field. Some writers use type 4, LONG (all
		// 4 bytes): readers such as PIL honour it too.
		if bo.Uint32(t[e+4:]) != 1 {
			return 0
		}
		var o int
		switch bo.Uint16(t[e+2:]) {
		case 3:
			o = int(bo.Uint16(t[e+8:]))
		case 4:
			o = int(bo.Uint32(t[e+8:]))
		default:
			return 0
		}
		if o < 1 || o > 8 {
			return 0
		}
		return o
	}
	return 0
}

// Orient returns img transformed for display according to EXIF orientation o:
// 1 as stored, 2 mirrored left-right, 3 rotated 180°, 4 mirrored top-bottom,
// 5 transposed, 6 rotated 90° clockwise, 7 transversed, 8 rotated 90°
// counter-clockwise. For 1 (and any value outside 1..8) img is returned as is;
// otherwise the result is a new *image.RGBA with bounds starting at (0, 0).
func Orient(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	// Convert once with draw's fast paths (YCbCr, paletted, ...), then permute
	// whole 4-byte pixels.
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	src := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(src, src.Rect, img, b.Min, draw.Src)
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	// For output pixel (dx, dy) the stored pixel is (sx, sy) = (x0 + dx*xdx + dy*xdy,
	// y0 + dx*ydx + dy*ydy); the table follows from the EXIF definition of which
	// visual side the stored 0th row and 0th column are.
	var x0, xdx, xdy, y0, ydx, ydy int
	switch o {
	case 2: // row 0 = top, column 0 = right
		x0, xdx, y0, ydy = w-1, -1, 0, 1
	case 3: // row 0 = bottom, column 0 = right
		x0, xdx, y0, ydy = w-1, -1, h-1, -1
	case 4: // row 0 = bottom, column 0 = left
		x0, xdx, y0, ydy = 0, 1, h-1, -1
	case 5: // row 0 = left, column 0 = top
		x0, xdy, y0, ydx = 0, 1, 0, 1
	case 6: // row 0 = right, column 0 = top
		x0, xdy, y0, ydx = 0, 1, h-1, -1
	case 7: // row 0 = right, column 0 = bottom
		x0, xdy, y0, ydx = w-1, -1, h-1, -1
	case 8: // row 0 = left, column 0 = bottom
		x0, xdy, y0, ydx = w-1, -1, 0, 1
	}
	for dy := 0; dy < dh; dy++ {
		drow := dst.Pix[dy*dst.Stride : dy*dst.Stride+4*dw]
		sx, sy := x0+dy*xdy, y0+dy*ydy
		for dx := 0; dx < dw; dx++ {
			s := sy*src.Stride + 4*sx
			copy(drow[4*dx:4*dx+4], src.Pix[s:s+4])
			sx += xdx
			sy += ydx
		}
	}
	return dst
}
