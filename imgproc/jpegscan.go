package imgproc

import "bytes"

// MaxScans is the most scans a JPEG may have: libjpeg-turbo's limit under
// TJFLAG_LIMITSCANS (fixed at 500 in libjpeg-turbo 2.1), applied to image/jpeg
// too. Every scan of a progressive JPEG is a pass over all of its coefficients,
// and an EOB run codes a whole pass in a few bytes, so without a limit a 360 KB
// file of 3,000 scans costs 14 s of CPU. Real encoders write about 10.
const MaxScans = 500

// MaxScanPasses bounds the work of all scans together: the samples they cover,
// summed over the scans, may be at most MaxScanPasses times the pixel limit.
// A progressive photo from libjpeg's default script covers each sample 5 times
// (4:2:0: 8 passes of its pixels, 4:4:4: 14); the many-scan attack covers the
// whole image in every scan, so a large image gets fewer than MaxScans.
const MaxScanPasses = 32

// jpegLayout is what a JPEG's markers announce, read without decoding any data.
type jpegLayout struct {
	width, height int
	progressive   bool
	comps         []jpegComponent // one per frame component
	scans         int             // SOS markers before EOI
	scanSamples   int64           // samples covered by each scan, summed over the scans
}

// jpegComponent is a frame component's id and its horizontal and vertical
// sampling factors.
type jpegComponent struct {
	id   byte
	h, v int
}

// readJPEGLayout walks the markers of b (which starts with SOI) as image/jpeg
// reads them: segments are skipped by their length, entropy-coded data up to the
// next marker, and stray bytes between segments are passed over. It returns
// ok=false when no frame header (SOFn) is found.
func readJPEGLayout(b []byte) (l jpegLayout, ok bool) {
	i := 2 // after SOI
	for i+1 < len(b) {
		if b[i] != 0xff {
			i++ // extraneous data before a marker: image/jpeg skips it too
			continue
		}
		m := b[i+1]
		switch {
		case m == 0xff: // fill byte
			i++
			continue
		case m == 0x00, m == 0x01, m >= 0xd0 && m <= 0xd7: // no length
			i += 2
			continue
		case m == 0xd9: // EOI
			return l, ok
		}
		if i+4 > len(b) {
			break
		}
		n := int(b[i+2])<<8 | int(b[i+3]) // counts its own 2 bytes
		if n < 2 {
			break // image/jpeg refuses the file
		}
		end := i + 2 + n
		switch {
		case m == 0xda:
			l.scans++
			if end <= len(b) {
				l.scanSamples += l.samplesIn(b[i+4 : end])
			}
			i = nextMarker(b, end)
			continue
		case isSOF(m) && !ok && end <= len(b):
			l, ok = parseSOF(b[i+4:end], m, l)
		}
		i = end
	}
	return l, ok
}

// nextMarker returns the index of the next marker at or after i, skipping
// entropy-coded data: 0xff followed by 0 (a stuffed byte), a restart marker or
// another 0xff (fill) is not a marker.
func nextMarker(b []byte, i int) int {
	for i < len(b) {
		j := bytes.IndexByte(b[i:], 0xff)
		if j < 0 || i+j+1 >= len(b) {
			return len(b)
		}
		i += j
		switch c := b[i+1]; {
		case c == 0x00, c >= 0xd0 && c <= 0xd7:
			i += 2
		case c == 0xff:
			i++
		default:
			return i
		}
	}
	return len(b)
}

// isSOF reports whether m is a start-of-frame marker (SOF0..SOF15 but DHT, JPG and DAC).
func isSOF(m byte) bool {
	return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc
}

// parseSOF reads a frame header into l: precision, height, width, then 3
// bytes per component. l keeps its scan counts.
func parseSOF(seg []byte, marker byte, l jpegLayout) (jpegLayout, bool) {
	if len(seg) < 6 {
		return l, false
	}
	l.height = int(seg[1])<<8 | int(seg[2])
	l.width = int(seg[3])<<8 | int(seg[4])
	l.progressive = marker&3 == 2 // SOF2, SOF6, SOF10, SOF14
	n := int(seg[5])
	if n == 0 || len(seg) < 6+3*n {
		return l, false
	}
	for c := range n {
		id, hv := seg[6+3*c], seg[6+3*c+1]
		l.comps = append(l.comps, jpegComponent{id, max(int(hv>>4), 1), max(int(hv&15), 1)})
	}
	return l, true
}

// samplesIn counts the samples of the components a scan header (SOS) selects.
// A scan before the frame header selects nothing image/jpeg would decode.
func (l jpegLayout) samplesIn(sos []byte) int64 {
	if len(sos) == 0 {
		return 0
	}
	var n int64
	for i := range int(sos[0]) {
		if 1+2*i >= len(sos) {
			break
		}
		for _, c := range l.comps {
			if c.id == sos[1+2*i] {
				n += l.componentSamples(c)
			}
		}
	}
	return n
}
