// A Go crypto/tls server and clients for weft's end-to-end tests (tests/e2e/suite_go_tls.py).
// HTTP/1.1 only (HTTP/2 is switched off on both sides): weft parses HTTP/1 inside TLS.
//
//	gotls server PORT CERT KEY      answers GET /missing with 404, any other path with 200
//	gotls get URL...                one connection, the URLs in turn; prints each status
//	gotls load BASE CONNS PER_CONN  CONNS goroutines, each with its own connection, each
//	                                sending PER_CONN requests to BASE/load/<conn>/<n>
//	gotls paced BASE N GAP_MS       GET BASE/paced/<n> N times, GAP_MS apart, each on a new
//	                                connection; prints "<n> <seconds since start> <status>"
//	gotls lines BASE                one connection: GET BASE+line for each line read on stdin,
//	                                printing each status (the test paces the requests)
package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		log.Fatal("usage: gotls server PORT CERT KEY | get URL... | load BASE CONNS PER_CONN")
	}
	switch os.Args[1] {
	case "server":
		serve(os.Args[2], os.Args[3], os.Args[4])
	case "get":
		get(os.Args[2:])
	case "paced":
		n, _ := strconv.Atoi(os.Args[3])
		gap, _ := strconv.Atoi(os.Args[4])
		paced(os.Args[2], n, time.Duration(gap)*time.Millisecond)
	case "lines":
		lines(os.Args[2])
	case "load":
		conns, _ := strconv.Atoi(os.Args[3])
		per, _ := strconv.Atoi(os.Args[4])
		load(os.Args[2], conns, per)
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
}

func serve(port, cert, key string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "go tls %s\n", r.URL.Path)
	})
	srv := &http.Server{
		Addr:         "127.0.0.1:" + port,
		Handler:      mux,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, // no HTTP/2
		ReadTimeout:  30 * time.Second,
	}
	log.Fatal(srv.ListenAndServeTLS(cert, key))
}

// One kept-alive HTTP/1.1 connection, as a new client each time.
func client() *http.Client {
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
		},
	}
}

func fetch(c *http.Client, url string) (int, error) {
	r, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return 0, err
	}
	return r.StatusCode, nil
}

func get(urls []string) {
	c := client()
	for _, u := range urls {
		status, err := fetch(c, u)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(status)
	}
}

func paced(base string, n int, gap time.Duration) {
	start := time.Now()
	for i := 0; i < n; i++ {
		at := time.Since(start).Seconds()
		c := client()
		status, err := fetch(c, fmt.Sprintf("%s/paced/%d", base, i))
		c.CloseIdleConnections()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d %.3f %d\n", i, at, status)
		time.Sleep(gap)
	}
}

func lines(base string) {
	c := client()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		status, err := fetch(c, base+in.Text())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(status)
	}
}

func load(base string, conns, per int) {
	var wg sync.WaitGroup
	failed := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := client()
			for n := 0; n < per; n++ {
				if _, err := fetch(c, fmt.Sprintf("%s/load/%d/%d", base, i, n)); err != nil {
					failed <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(failed)
	for err := range failed {
		log.Fatal(err)
	}
	fmt.Println("done")
}
