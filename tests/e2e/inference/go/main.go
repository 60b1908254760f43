// Two tiers of a Go net/http chain. The front answers GET /front/{n} after calling the back's
// /down/{n} inside its handler (one http.Client, keep-alive pool); the back answers any GET
// with its path.
//
//	inference front PORT BACK_HOST:PORT
//	inference back PORT
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		log.Fatal("usage: inference front PORT BACK_HOST:PORT | inference back PORT")
	}
	mux := http.NewServeMux()
	switch os.Args[1] {
	case "back":
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "back %s\n", r.URL.Path)
		})
	case "front":
		back := os.Args[3]
		client := &http.Client{Timeout: 10 * time.Second}
		mux.HandleFunc("/front/", func(w http.ResponseWriter, r *http.Request) {
			n := strings.TrimPrefix(r.URL.Path, "/front/")
			resp, err := client.Get("http://" + back + "/down/" + n)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			w.Write(body)
		})
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Args[2], mux))
}
