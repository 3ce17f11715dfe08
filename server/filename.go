package server

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFilenameBytes bounds an upload's file name wherever the server repeats it
// (the answer, the live stream, logs): 255 bytes, the longest name common file
// systems allow, so a 9 MB "name" costs nothing to echo or broadcast.
const maxFilenameBytes = 255

// cleanFilename is name as valid UTF-8 with no control or bidirectional
// formatting character, each of those replaced by U+FFFD, cut to at most
// maxFilenameBytes bytes on a character boundary. The server shows the name
// (the answer, the live page, logs), where a line break or a right-to-left
// override ("\u202egpj.exe" shows as "exe.jpg") would disguise it.
func cleanFilename(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(name, "\uFFFD"))
	if len(name) <= maxFilenameBytes {
		return name
	}
	cut := maxFilenameBytes
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut]
}
