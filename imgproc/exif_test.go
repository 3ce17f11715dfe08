package imgproc

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"strings"
	"testing"
)

// exifSegment builds an APP1 "Exif" segment whose IFD0 holds a Make tag (which
// the parser must skip) and then Orientation = o, in the given byte order.
// byteOrder is what binary.LittleEndian and binary.BigEndian both are.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func exifSegment(bo byteOrder, o uint16) []byte {
	t := []byte("II")
	if bo == byteOrder(binary.BigEndian) {
		t = []byte("MM")
	}
	t = bo.AppendUint16(t, 42)
	t = bo.AppendUint32(t, 8) // IFD0 right after the header
	t = bo.AppendUint16(t, 2) // two entries
	// Make (0x010F), ASCII (2), 4 bytes "Foo\0" stored inline.
	t = bo.AppendUint16(t, 0x010f)
	t = bo.AppendUint16(t, 2)
	t = bo.AppendUint32(t, 4)
	t = append(t, "Foo\x00"...)
	// Orientation (0x0112), SHORT (3), count 1, value left-justified in 4 bytes.
	t = bo.AppendUint16(t, 0x0112)
	t = bo.AppendUint16(t, 3)
	t = bo.AppendUint32(t, 1)
	t = bo.AppendUint16(t, o)
	t = append(t, 0, 0)
	t = bo.AppendUint32(t, 0) // no next IFD
	seg := []byte{0xff, 0xe1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(2+6+len(t)))
	seg = append(seg, "Exif\x00\x00"...)
	return append(seg, t...)
}

// jfifSegment is the APP0 segment most cameras and editors write before APP1.
var jfifSegment = []byte{0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}

// withSegments inserts segments right after a JPEG's SOI marker.
func withSegments(jpg []byte, segs ...[]byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

// storedBlocks is the visual pattern
//
//	A B C
//	D E F
//
// stored the way a camera would for each EXIF orientation, written out by hand
// from the EXIF 2.3 table: "0th row" and "0th column" say which visual side the
// first stored row and column are.
var storedBlocks = map[uint16][]string{
	1: {"ABC", "DEF"},     // row 0 top, column 0 left
	2: {"CBA", "FED"},     // row 0 top, column 0 right
	3: {"FED", "CBA"},     // row 0 bottom, column 0 right
	4: {"DEF", "ABC"},     // row 0 bottom, column 0 left
	5: {"AD", "BE", "CF"}, // row 0 left, column 0 top
	6: {"CF", "BE", "AD"}, // row 0 right, column 0 top
	7: {"FC", "EB", "DA"}, // row 0 right, column 0 bottom
	8: {"DA", "EB", "FC"}, // row 0 left, column 0 bottom
}

// TestDecodeOrientation stores the visual pattern
//
//	A B C
//	D E F
//
// the way a camera would for each EXIF orientation (storedBlocks), and checks
// that Decode shows the visual pattern again.
func TestDecodeOrientation(t *testing.T) {
	for o := uint16(1); o <= 8; o++ {
		jpg := encodeJPEG(t, blocksImage(storedBlocks[o]...))
		for _, bo := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
			for _, withJFIF := range []bool{false, true} {
				data := withSegments(jpg, exifSegment(bo, o))
				if withJFIF {
					data = withSegments(jpg, jfifSegment, exifSegment(bo, o))
				}
				if got := jpegOrientation(data); got != int(o) {
					t.Errorf("orientation %d (%v, JFIF %v): parsed %d", o, bo, withJFIF, got)
				}
				img, err := DecodeBytes(data, testLimits)
				if err != nil {
					t.Fatal(err)
				}
				checkBlocks(t, img, 12, "ABC", "DEF")
			}
		}
	}
}

func TestJPEGOrientationMalformed(t *testing.T) {
	jpg := encodeJPEG(t, blocksImage("AB"))
	good := exifSegment(binary.BigEndian, 6)
	// Offsets into good: segment header 4, "Exif\0\0" 6, TIFF header 8, count 2,
	// Make entry 12, Orientation entry 12 (tag, type, count, value).
	orient := 4 + 6 + 8 + 2 + 12
	mutate := func(f func(s []byte) []byte) []byte {
		return withSegments(jpg, f(append([]byte{}, good...)))
	}
	for i, tc := range []struct {
		name string
		data []byte
		want int
	}{
		{"valid", mutate(func(s []byte) []byte { return s }), 6},
		{"no exif", jpg, 1},
		{"value 0", mutate(func(s []byte) []byte { s[orient+8], s[orient+9] = 0, 0; return s }), 1},
		{"value 9", mutate(func(s []byte) []byte { s[orient+9] = 9; return s }), 1},
		{"type LONG", mutate(func(s []byte) []byte { s[orient+3] = 4; return s }), 1},
		{"count 2", mutate(func(s []byte) []byte { s[orient+7] = 2; return s }), 1},
		{"bad byte order", mutate(func(s []byte) []byte { s[10], s[11] = 'X', 'X'; return s }), 1},
		{"not 42", mutate(func(s []byte) []byte { s[13] = 43; return s }), 1},
		{"IFD offset past end", mutate(func(s []byte) []byte { s[17] = 200; return s }), 1},
		{"Make entry only", mutate(func(s []byte) []byte { s[19] = 1; return s }), 1},
		{"fill bytes before marker", withSegments(jpg, []byte{0xff, 0xff}, good), 6},
		// EXIF lives in APP1 alone: a comment holding its bytes is a comment.
		{"exif in a COM segment", mutate(func(s []byte) []byte { s[1] = 0xfe; return s }), 1},
		{"segment length past end", mutate(func(s []byte) []byte { s[2] = 0xff; return s })[:len(good)+2], 1},
		{"segment length 1", mutate(func(s []byte) []byte { s[2], s[3] = 0, 1; return s }), 1},
		{"only SOI", []byte{0xff, 0xd8}, 1},
		{"not a jpeg", []byte("GIF89a"), 1},
	} {
		if got := jpegOrientation(tc.data); got != tc.want {
			t.Errorf("%s: orientation %d, want %d", tc.name, got, tc.want)
		}
		// A broken EXIF block never makes the photo undecodable (the last cases
		// are broken JPEGs, not just broken EXIF).
		if i < 11 {
			if _, err := DecodeBytes(tc.data, testLimits); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
	}
}

func TestOrientKeepsOtherTypes(t *testing.T) {
	// Orient must work from any image type and any bounds origin.
	src := blocksImage("ABC", "DEF")
	sub := src.SubImage(image.Rect(16, 0, 48, 32)) // "BC", "EF", origin (16, 0)
	checkBlocks(t, Orient(sub, 6), 0, "EB", "FC")
	gray := image.NewGray(image.Rect(0, 0, 3, 2))
	gray.Pix = []uint8{1, 2, 3, 4, 5, 6}
	got := Orient(gray, 8).(*image.RGBA)
	// Rotated 90° counter-clockwise: columns become rows, right column on top.
	want := []uint8{3, 6, 2, 5, 1, 4}
	for i, v := range want {
		if got.Pix[4*i] != v {
			t.Fatalf("Orient(gray, 8) = %v, want grey levels %v", got.Pix, want)
		}
	}
	if Orient(gray, 1) != image.Image(gray) || Orient(gray, 0) != image.Image(gray) {
		t.Errorf("orientation 1 and invalid values must return the image unchanged")
	}
}

// pngChunk is a PNG chunk: length, type, data and the CRC of type and data.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(append(c, typ...), data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// TestDecodePNGOrientation: a PNG's eXIf chunk (the TIFF structure of an
// APP1 segment) turns it upright as a JPEG's EXIF does; it was ignored.
func TestDecodePNGOrientation(t *testing.T) {
	stored := map[uint16][]string{3: {"FED", "CBA"}, 6: {"CF", "BE", "AD"}, 8: {"DA", "EB", "FC"}}
	for o, rows := range stored {
		png := encodePNG(t, blocksImage(rows...))
		tiff := exifSegment(binary.BigEndian, o)[10:] // after the marker, length and "Exif\0\0"
		// IHDR is the first chunk: 8 bytes of signature, then 8 + 13 + 4.
		data := append(append(append([]byte{}, png[:33]...), pngChunk("eXIf", tiff)...), png[33:]...)
		if got := pngOrientation(data); got != int(o) {
			t.Errorf("orientation %d: parsed %d", o, got)
		}
		img, err := DecodeBytes(data, testLimits)
		if err != nil {
			t.Fatal(err)
		}
		checkBlocks(t, img, 0, "ABC", "DEF")
	}
	// An eXIf chunk after IEND is past the image: not read.
	png := encodePNG(t, blocksImage("ABC", "DEF"))
	late := append(append([]byte{}, png...), pngChunk("eXIf", exifSegment(binary.BigEndian, 6)[10:])...)
	if got := pngOrientation(late); got != 1 {
		t.Errorf("eXIf after IEND: orientation %d, want 1", got)
	}
}

// An IFD offset below 8 points into the TIFF header: no orientation, though
// entries read from there would hold one (little-endian, the count reads as
// 4 and the second entry is an Orientation of 6).
func TestEXIFOffsetIntoTheHeader(t *testing.T) {
	tiff := []byte{'I', 'I', 42, 0, 4, 0, 0, 0}
	tiff = append(tiff, make([]byte, 10)...) // the first "entry", 6..17, is no Orientation
	tiff = append(tiff, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0)
	tiff = append(tiff, make([]byte, 24)...)
	if got := exifOrientation(tiff); got != 0 {
		t.Errorf("IFD at offset 4: orientation %d, want 0 (none)", got)
	}
}

// webpFile is a WebP file of the given chunks (FourCC, data), padded as RIFF
// wants.
func webpFile(chunks ...[2]string) []byte {
	var body []byte
	for _, c := range chunks {
		body = append(body, c[0]...)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(c[1])))
		body = append(body, c[1]...)
		if len(c[1])%2 == 1 {
			body = append(body, 0)
		}
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))...)
	return append(append(out, "WEBP"...), body...)
}

// TestWebPOrientationAndAnimation: a WebP's EXIF chunk, with or without the
// "Exif\0\0" prefix some writers put there, gives its orientation, and an
// animated WebP is refused as unsupported, not as corrupt.
func TestWebPOrientationAndAnimation(t *testing.T) {
	seg := exifSegment(binary.LittleEndian, 6)
	vp8x := string(make([]byte, 10))
	for _, exif := range []string{string(seg[10:]), string(seg[4:])} {
		if got := webpOrientation(webpFile([2]string{"VP8X", vp8x}, [2]string{"ICCP", "odd"}, [2]string{"EXIF", exif})); got != 6 {
			t.Errorf("EXIF chunk %.6q...: orientation %d, want 6", exif, got)
		}
	}
	_, err := DecodeBytes(webpFile([2]string{"VP8X", vp8x}, [2]string{"ANIM", string(make([]byte, 6))}), testLimits)
	var unsupported *UnsupportedError
	if !errors.As(err, &unsupported) || !strings.Contains(err.Error(), "an animated WebP") {
		t.Errorf("animated WebP: %v, want unsupported", err)
	}
}

// TestOrientationAsLong: an Orientation stored as a LONG, against the
// standard's SHORT, is read as PIL reads it.
func TestOrientationAsLong(t *testing.T) {
	tiff := exifSegment(binary.BigEndian, 6)[10:]
	binary.BigEndian.PutUint16(tiff[8+2+12+2:], 4) // the Orientation entry's type: LONG
	binary.BigEndian.PutUint32(tiff[8+2+12+8:], 6) // its value, all 4 bytes
	if got := exifOrientation(tiff); got != 6 {
		t.Errorf("LONG orientation 6 parsed as %d", got)
	}
}
