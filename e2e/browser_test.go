package e2e

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/jwtblocklist/blocklist/internal/logtest"
)

var screenshotDir = flag.String("screenshots", "", "folder for the PNG of each step (default: a new temporary folder, kept and printed)")

// Bounds, generous for a loaded CI machine; none of them is a measurement.
const (
	testTimeout  = 4 * time.Minute  // the whole story: browser, demos, every step (not the build)
	stepTimeout  = 20 * time.Second // one click and its answer, one navigation
	startTimeout = 30 * time.Second // the demo printing where it listens
)

// chromiumPath finds the browser: $CHROMIUM, else chromium on $PATH. Without
// one the test skips, and under CI=true fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found, and CI=true: install it (apt-get install -y chromium) or set $CHROMIUM")
	}
	t.Skip("chromium not found: apt-get install -y chromium, or set $CHROMIUM")
	return ""
}

// startBrowser starts a headless Chromium with a fresh profile, ending with
// ctx, and returns a context of it that has run once; tabs made from it with
// chromedp.NewContext share the browser.
func startBrowser(t *testing.T, ctx context.Context, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(800, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() }) // cancelAlloc waits for the process
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return browserCtx
}

// buildDemo builds cmd/demo of the module above into a temporary folder.
func buildDemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/demo")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/demo: %v\n%s", err, out)
	}
	return bin
}

// demo is a running demo binary.
type demo struct {
	url string
	log *logtest.SyncBuffer // its stderr: the request log
}

// startDemo starts the demo binary with args on a free loopback port and
// stops it with SIGTERM when the test ends.
func startDemo(t *testing.T, bin string, args ...string) *demo {
	t.Helper()
	d := &demo{log: &logtest.SyncBuffer{}}
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Stderr = d.log
	cmd.SysProcAttr = sysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("demo %v: no exit within 10s of SIGTERM", args)
		}
		if t.Failed() {
			t.Logf("demo %v log:\n%s", args, d.log)
		}
	})
	select {
	case line := <-lines:
		url, ok := strings.CutPrefix(line, "demo: listening on ")
		if !ok {
			t.Fatalf("demo %v: first line %q; want its address\n%s", args, line, d.log)
		}
		d.url = url
	case err := <-exited:
		t.Fatalf("demo %v exited: %v\n%s", args, err, d.log)
	case <-time.After(startTimeout):
		t.Fatalf("demo %v: no address within %v\n%s", args, startTimeout, d.log)
	}
	return d
}

// answered reports whether the demo logged a request with this method,
// path and status.
func (d *demo) answered(method, path string, status int) bool {
	return strings.Contains(d.log.String(), fmt.Sprintf("msg=request method=%s path=%s status=%d ", method, path, status))
}

// tab is one browser tab in a browser context of its own (its own cookies),
// with the HTTP exchanges it saw and a folder for screenshots.
type tab struct {
	t     *testing.T
	ctx   context.Context
	shots *shots

	mu        sync.Mutex
	exchanges map[network.RequestID]*exchange
	order     []network.RequestID
}

// exchange is one request of the tab as the browser's network log shows it.
type exchange struct {
	request   string // "METHOD URL"
	fetchSite string // the Sec-Fetch-Site header the browser sent
	tokenSent bool   // the token cookie went along
	extraInfo bool   // the two fields above are known
	status    int    // 0 until the response arrives
}

// newTab opens a tab of the browser of parent; with
// chromedp.WithNewBrowserContext in opts it gets cookies of its own, else
// it shares parent's.
func newTab(t *testing.T, parent context.Context, s *shots, opts ...chromedp.ContextOption) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	b := &tab{t: t, ctx: ctx, shots: s, exchanges: map[network.RequestID]*exchange{}}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.exchange(ev.RequestID).request = ev.Request.Method + " " + ev.Request.URL
		case *network.EventRequestWillBeSentExtraInfo:
			x := b.exchange(ev.RequestID)
			x.extraInfo = true
			for name, v := range ev.Headers {
				if strings.EqualFold(name, "Sec-Fetch-Site") {
					x.fetchSite = fmt.Sprint(v)
				}
			}
			for _, c := range ev.AssociatedCookies {
				if c.Cookie != nil && c.Cookie.Name == "token" && len(c.BlockedReasons) == 0 {
					x.tokenSent = true
				}
			}
		case *network.EventResponseReceived:
			b.exchange(ev.RequestID).status = int(ev.Response.Status)
		}
	})
	if err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return b
}

// exchange returns the record of id, made on first use; b.mu is held.
func (b *tab) exchange(id network.RequestID) *exchange {
	x, ok := b.exchanges[id]
	if !ok {
		x = &exchange{}
		b.exchanges[id] = x
		b.order = append(b.order, id)
	}
	return x
}

// lastExchange waits until the tab has seen the response to the last
// request "METHOD URL" it sent, and the headers and cookies sent with it,
// and returns that exchange.
func (b *tab) lastExchange(request string) exchange {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		b.mu.Lock()
		for i := len(b.order) - 1; i >= 0; i-- {
			if x := b.exchanges[b.order[i]]; x.request == request {
				if x.status != 0 && x.extraInfo {
					b.mu.Unlock()
					return *x
				}
				break
			}
		}
		b.mu.Unlock()
		if time.Now().After(deadline) {
			b.t.Fatalf("no response to %s within %v", request, stepTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do runs actions, bounded by stepTimeout.
func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// shots saves numbered screenshots into one folder.
type shots struct {
	dir string
	n   int
}

func newShots(t *testing.T) *shots {
	t.Helper()
	dir := *screenshotDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "blocklist-e2e-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &shots{dir: dir}
}

// save writes png as NN-name.png.
func (s *shots) save(t *testing.T, name string, png []byte) {
	t.Helper()
	s.n++
	if err := os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name)), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// shoot saves a screenshot of the element with id, or of the page's body
// when id is empty.
func (b *tab) shoot(name, id string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	var png []byte
	var err error
	if id == "" {
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("body")))
	} else {
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.ID(id)))
	}
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.shots.save(b.t, name, png)
}
