package main

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
)

// pageFiles is the story page: index.html, its script and its style. No
// framework and nothing from another origin.
//
//go:embed page
var pageFiles embed.FS

// pageCSP lets the page run only its own script and style, talk only to
// this server, and not be framed; a page that shows tokens should not run
// anything injected into it.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// routePage serves the story page: GET / is page/index.html, GET
// /page/NAME.js and /page/NAME.css its script and style. Other paths keep
// their 404 or 405.
func routePage(mux *http.ServeMux) {
	files, err := fs.Sub(pageFiles, "page")
	if err != nil {
		panic(err) // the embedded folder is fixed at build time
	}
	headers := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", pageCSP)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Referrer-Policy", "no-referrer")
			w.Header().Set("Cache-Control", "no-cache")
			h.ServeHTTP(w, r)
		})
	}
	mux.Handle("GET /{$}", headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "index.html")
	})))
	mux.Handle("GET /page/{file}", headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch file := r.PathValue("file"); path.Ext(file) {
		case ".js", ".css":
			http.ServeFileFS(w, r, files, file)
		default:
			http.NotFound(w, r)
		}
	})))
}
