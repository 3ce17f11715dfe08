// Package hostile generates hostile but well-formed images for tests: small
// files that are costly to decode (decompression bombs).
package hostile

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// jpegBits writes an entropy-coded segment: bits MSB first, 0xff bytes stuffed
// with 0x00, the last byte padded with ones.
type jpegBits struct {
	out  []byte
	acc  uint32
	nacc int
}

func (w *jpegBits) write(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | (v>>i)&1
		w.nacc++
		if w.nacc == 8 {
			w.flushByte()
		}
	}
}

func (w *jpegBits) flushByte() {
	b := byte(w.acc)
	w.out = append(w.out, b)
	if b == 0xff {
		w.out = append(w.out, 0)
	}
	w.acc, w.nacc = 0, 0
}

func (w *jpegBits) bytes() []byte {
	if w.nacc > 0 {
		w.write(0xff, 8-w.nacc)
	}
	return w.out
}

func jpegSegment(b []byte, marker byte, payload []byte) []byte {
	b = append(b, 0xff, marker)
	b = binary.BigEndian.AppendUint16(b, uint16(2+len(payload)))
	return append(b, payload...)
}

// ProgressiveJPEG returns a w x h greyscale progressive JPEG of scans scans:
// one DC scan that sets every block to mid-grey, then AC scans of the whole band
// 1..63 that code every block as part of an end-of-band run. Each AC scan is a
// pass over every block yet takes a few bytes: the many-scan attack.
func ProgressiveJPEG(w, h, scans int) []byte {
	b := []byte{0xff, 0xd8}
	b = jpegSegment(b, 0xdb, append([]byte{0}, bytes.Repeat([]byte{1}, 64)...)) // DQT 0: all ones
	b = jpegSegment(b, 0xc2, []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 1, 1, 0x11, 0})
	// DC table 0: one 1-bit code, for a zero difference.
	b = jpegSegment(b, 0xc4, append([]byte{0x00, 1}, append(make([]byte, 15), 0x00)...))
	// AC table 0: 4-bit codes 0..14 for EOB0..EOB14 (a run of 2^n + n more bits blocks).
	ac := []byte{0x10, 0, 0, 0, 15}
	ac = append(ac, make([]byte, 12)...)
	for n := range 15 {
		ac = append(ac, byte(n<<4))
	}
	b = jpegSegment(b, 0xc4, ac)
	blocks := ((w + 7) / 8) * ((h + 7) / 8)
	b = jpegSegment(b, 0xda, []byte{1, 1, 0x00, 0, 0, 0}) // DC first scan
	var dc jpegBits
	for range blocks {
		dc.write(0, 1)
	}
	b = append(b, dc.bytes()...)
	var eob jpegBits
	for rest := blocks; rest > 0; {
		run := min(rest, 1<<15-1)
		n := bits.Len(uint(run)) - 1
		eob.write(uint32(n), 4)
		eob.write(uint32(run-1<<n), n)
		rest -= run
	}
	acScan := eob.bytes()
	for range scans - 1 {
		b = jpegSegment(b, 0xda, []byte{1, 1, 0x00, 1, 63, 0})
		b = append(b, acScan...)
	}
	return append(b, 0xff, 0xd9)
}

// ZeroPNG returns a black w x h PNG of the given bit depth and colour type
// (2 RGB, 6 RGBA, 0 grey), compressed as it streams: a 7000x7000 16-bit one
// is a few hundred KB.
func ZeroPNG(w, h int, depth, colorType byte) []byte {
	channels := map[byte]int{0: 1, 2: 3, 4: 2, 6: 4}[colorType]
	b := []byte("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
		start := len(b)
		b = append(b, typ...)
		b = append(b, data...)
		b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	chunk("IHDR", append(ihdr, depth, colorType, 0, 0, 0))
	var idat bytes.Buffer
	z, _ := zlib.NewWriterLevel(&idat, zlib.BestSpeed)
	row := make([]byte, 1+(w*channels*int(depth)+7)/8) // filter byte 0, then zeros
	for range h {
		z.Write(row)
	}
	z.Close()
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	return b
}
