// Package web holds captioner's pages and their assets, embedded in the binary
// so the server needs no files and the pages no CDN.
package web

import "embed"

// Static holds index.html (upload), live.html (live captions) and their CSS and JS.
//
//go:embed *.html *.css *.js
var Static embed.FS
