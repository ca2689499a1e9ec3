package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/jwtguard"
)

// adminTarget runs the commands through a server's admin handler
// ((*jwtguard.Guard).AdminHandler).
type adminTarget struct {
	base   *url.URL
	token  string
	client *http.Client
}

// maxAdminAnswer bounds an answer read from the admin server.
const maxAdminAnswer = 16 << 20

func newAdminTarget(o options) (target, error) {
	u, err := url.Parse(o.admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("-admin %q: want an http:// or https:// URL", o.admin)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, usagef("-admin %q: want a base URL without query or fragment", o.admin)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, usagef("-admin %q: the admin token would cross the network in clear; use https:// for a remote server", o.admin)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	if o.adminToken == "" {
		return nil, usagef("-admin needs the admin token: -admin-token or $BLOCKLIST_ADMIN_TOKEN")
	}
	return &adminTarget{base: u, token: o.adminToken, client: &http.Client{}}, nil
}

func (a *adminTarget) Close() error {
	a.client.CloseIdleConnections()
	return nil
}

// call sends one request to the path made of segments, each escaped as
// one path segment, and decodes the JSON answer into out.
func (a *adminTarget) call(ctx context.Context, method string, segments []string, query url.Values, body, out any) error {
	var path strings.Builder
	for _, seg := range segments {
		path.WriteString("/")
		path.WriteString(url.PathEscape(seg))
	}
	target := a.base.String() + path.String()
	if query != nil {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return usagef("-admin: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return unavailable(fmt.Errorf("admin server: %w", err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return unavailable(fmt.Errorf("admin server: reading the answer: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		err := fmt.Errorf("admin server answered %s: %s", resp.Status, msg)
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
			return usageError{err}
		}
		return unavailable(err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return unavailable(fmt.Errorf("admin server: answer is not the expected JSON: %w", err))
	}
	return nil
}

func (a *adminTarget) Revoke(ctx context.Context, jti string, exp time.Time) (time.Time, error) {
	var r jwtguard.AdminRevocation
	err := a.call(ctx, http.MethodPost, []string{"revocations"}, nil, map[string]string{"jti": jti, "exp": exp.Format(time.RFC3339Nano)}, &r)
	if err != nil {
		return time.Time{}, err
	}
	if r.Until == nil {
		return time.Time{}, unavailable(errors.New("admin server: answer without until"))
	}
	return *r.Until, nil
}

func (a *adminTarget) RevokeToken(ctx context.Context, raw string) (revocation, error) {
	var r jwtguard.AdminRevocation
	if err := a.call(ctx, http.MethodPost, []string{"revocations"}, nil, map[string]string{"token": raw}, &r); err != nil {
		return revocation{}, err
	}
	out := revocation{JTI: r.JTI, Expired: r.Expired, Session: r.Session}
	if r.Until != nil {
		out.Until = *r.Until
	}
	return out, nil
}

func (a *adminTarget) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	var r jwtguard.AdminRevocation
	if err := a.call(ctx, http.MethodGet, []string{"revocations", jti}, nil, nil, &r); err != nil {
		return time.Time{}, err
	}
	if !r.Revoked || r.Until == nil {
		return time.Time{}, nil
	}
	return *r.Until, nil
}

func (a *adminTarget) List(ctx context.Context, prefix string, fn func(string, time.Time) error) error {
	cursor := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(jwtguard.AdminMaxLimit)}}
		if prefix != "" {
			q.Set("prefix", prefix)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page jwtguard.AdminPage
		if err := a.call(ctx, http.MethodGet, []string{"revocations"}, q, nil, &page); err != nil {
			return err
		}
		for _, r := range page.Revocations {
			if r.Until == nil {
				continue
			}
			if err := fn(r.JTI, *r.Until); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		cursor = page.Next
	}
}

func (a *adminTarget) RevokeSession(ctx context.Context, sid string) error {
	var out map[string]any
	return a.call(ctx, http.MethodPost, []string{"sessions", sid, "revoke"}, nil, nil, &out)
}

func (a *adminTarget) LogoutAll(ctx context.Context, sub string) error {
	var out map[string]any
	return a.call(ctx, http.MethodPost, []string{"subjects", sub, "logout-all"}, nil, nil, &out)
}

func (a *adminTarget) Watch(context.Context, func(blocklist.Event)) error {
	return usagef("watch needs -store: the admin handler has no stream of revocations")
}

func (a *adminTarget) Doctor(ctx context.Context, report func(finding)) error {
	var st jwtguard.AdminStats
	err := a.call(ctx, http.MethodGet, []string{"stats"}, nil, nil, &st)
	var ue usageError
	if errors.As(err, &ue) {
		return err // a wrong token or URL is the operator's to fix
	}
	report(finding{Check: "admin server", OK: err == nil, Detail: errText(err, a.base.String()+" answers, and its store counted the revocations")})
	return nil
}

func (a *adminTarget) Stats(ctx context.Context) (stats, error) {
	var st jwtguard.AdminStats
	if err := a.call(ctx, http.MethodGet, []string{"stats"}, nil, nil, &st); err != nil {
		return stats{}, err
	}
	if st.Revocations == nil {
		return stats{}, usagef("the server's store cannot list its revocations")
	}
	return stats{Revocations: *st.Revocations, ByKind: st.ByKind}, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
