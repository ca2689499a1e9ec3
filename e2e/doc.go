// Package e2e tells the demo's story in a real headless Chromium, driven by
// chromedp: it builds cmd/demo, starts it on a free loopback port, clicks
// through the page at GET / and checks what a browser does with the token
// cookie (HttpOnly, cleared on logout), that a copied token is refused after
// logout, and that a page of another origin cannot log the user out.
//
// It is its own module so that the core module does not depend on chromedp.
// Run it with `go test` in this folder (make test does). It needs Debian's
// chromium (or $CHROMIUM naming a Chrome or Chromium binary); without one
// it is skipped, and under CI=true it fails. With -screenshots DIR it saves
// a PNG of each step there; by default to a new temporary folder, which it
// prints.
package e2e
