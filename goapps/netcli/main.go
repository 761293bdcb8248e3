// netcli: a typical CLI that imports net/http, crypto/tls and encoding/json. Startup cost: a much
// larger binary and the init work of those packages. With CGO_ENABLED=1 it links libc
// dynamically (the net package's cgo resolver), with CGO_ENABLED=0 it is static.
package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

type config struct {
	URL     string `json:"url"`
	Timeout int    `json:"timeout_s"`
}

func main() {
	cfg := config{URL: "https://example.invalid/", Timeout: 5}
	if len(os.Args) > 1 && os.Args[1] == "-fetch" {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
		if _, err := client.Get(cfg.URL); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	out, _ := json.Marshal(cfg)
	fmt.Println(string(out))
}
