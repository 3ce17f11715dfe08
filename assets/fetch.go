package assets

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// httpClient bounds a stalled download; the files are a few megabytes.
var httpClient = &http.Client{Timeout: 10 * time.Minute}

func httpGet(url string) (io.ReadCloser, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return resp.Body, nil
}
