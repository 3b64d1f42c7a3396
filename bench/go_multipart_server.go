// A reference server for bench/load_http.sh: Go's net/http with ParseMultipartForm, the
// server issue 3 quotes for scale in scenarios (b) and (c). Measured in the same run as
// spillwayd, it tells how this machine compares with the one the figures come
// from. Files up to -max-memory stay in RAM and larger ones spill to TMPDIR, as with
// FILE_UPLOAD_MAX_MEMORY_SIZE; the reply is a small JSON count, like --sink=discard's.
// HTTP/2 without TLS (prior knowledge and Upgrade) comes from golang.org/x/net/http2/h2c
// (Debian's golang-golang-x-net-dev; load_http.sh builds this file in GOPATH mode).
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	maxMemory := flag.Int64("max-memory", 5<<19, "bytes of file parts kept in RAM per request")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseMultipartForm(*maxMemory); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer r.MultipartForm.RemoveAll()
		files, bytes := 0, int64(0)
		for _, headers := range r.MultipartForm.File {
			for _, h := range headers {
				files++
				bytes += h.Size
			}
		}
		fmt.Fprintf(w, "{\"files\":%d,\"bytes\":%d}\n", files, bytes)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	server := &http.Server{Addr: *addr, Handler: h2c.NewHandler(mux, &http2.Server{})}
	log.Fatal(server.ListenAndServe())
}
