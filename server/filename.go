package server

import (
	"strings"
	"unicode/utf8"
)

// maxFilenameBytes bounds an upload's file name wherever the server repeats it
// (the answer, the live stream, logs): 255 bytes, the longest name common file
// systems allow, so a 9 MB "name" costs nothing to echo or broadcast.
const maxFilenameBytes = 255

// boundedFilename is name as valid UTF-8 cut to at most maxFilenameBytes bytes,
// on a character boundary.
func boundedFilename(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	if len(name) <= maxFilenameBytes {
		return name
	}
	cut := maxFilenameBytes
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut]
}
