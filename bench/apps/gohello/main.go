// gohello answers every request with a 1 KiB body: the benchmark backend.
package main

import (
	"log"
	"net/http"
	"os"
	"strings"
)

func main() {
	body := []byte(strings.Repeat("x", 1023) + "\n")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	addr := "0.0.0.0:" + os.Getenv("PORT")
	log.Printf("listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
