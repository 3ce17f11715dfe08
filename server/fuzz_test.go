package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/captioner/captioner/config"
)

// The fuzz targets send arbitrary bytes through the upload path (body limit,
// multipart parsing, option parsing, image sniffing and decoding, preprocessing,
// thumbnails) and check that every answer is one the API documents. The model is
// the queue tests' double: the point is the untrusted input, and the double keeps
// each execution fast. CI runs both for a fixed number of
// executions (make fuzz-short).

// fuzzBoundary is the multipart boundary of FuzzMultipartUpload's bodies.
const fuzzBoundary = "fuzzboundary"

func fuzzServer(f *testing.F) http.Handler {
	m := newStepModel("fuzz")
	m.entered = nil
	m.pre = testPreprocessor(1 << 20) // keeps a valid huge header from costing seconds
	cfg := testConfig(f, func(c *config.Config) {
		c.Server.MaxBatch = 1 // a batch starts as soon as an image arrives
		c.Server.MaxBodyBytes = 1 << 20
	})
	s := New(cfg, modelLoader(m), discardLog())
	if err := s.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Shutdown(context.Background()) })
	return s.Handler()
}

func checkUpload(t *testing.T, h http.Handler, contentType string, body []byte) {
	req := httptest.NewRequest("POST", "/v1/captions?timeout_ms=10000", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out struct {
		Error    string           `json:"error"`
		Captions []map[string]any `json:"captions"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("status %d, body is not JSON: %v: %q", w.Code, err, w.Body.Bytes())
	}
	switch w.Code {
	case 200:
		if len(out.Captions) == 0 || out.Error != "" {
			t.Fatalf("200 without captions: %s", w.Body)
		}
	case 400, 413, 415:
		if out.Error == "" {
			t.Fatalf("%d without an error message: %s", w.Code, w.Body)
		}
	default:
		t.Fatalf("status %d is not an answer to bad input: %s", w.Code, w.Body)
	}
}

func FuzzRawUpload(f *testing.F) {
	h := fuzzServer(f)
	f.Add(photoPNG(3, 2))
	f.Add(pngHeader(4000, 4000))
	f.Add([]byte("GIF89a\x01\x00\x01\x00"))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xe1, 0x00, 0x10, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, '*'})
	f.Fuzz(func(t *testing.T, body []byte) {
		checkUpload(t, h, "image/jpeg", body)
	})
}

func FuzzMultipartUpload(f *testing.F) {
	h := fuzzServer(f)
	f.Add([]byte("--" + fuzzBoundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n" +
		string(photoPNG(2, 2)) + "\r\n--" + fuzzBoundary + "\r\nContent-Disposition: form-data; name=\"beam\"\r\n\r\n2\r\n--" + fuzzBoundary + "--\r\n"))
	f.Add([]byte("--" + fuzzBoundary + "\r\nContent-Disposition: form-data; name=\"alternatives\"\r\n\r\n9\r\n--" + fuzzBoundary + "--\r\n"))
	f.Add([]byte("--" + fuzzBoundary + "\r\n\r\n\r\n--" + fuzzBoundary))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkUpload(t, h, "multipart/form-data; boundary="+fuzzBoundary, body)
	})
}
