package jwtguard_test

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// The admin handler authenticates nobody: mount it under a prefix, behind
// a credential of your own.
func ExampleGuard_AdminHandler() {
	secret := []byte("an HS256 key of at least 32 bytes!")
	store := memorystore.New()
	defer store.Close()
	guard, err := jwtguard.New(store,
		func(*jwt.Token) (any, error) { return secret, nil },
		jwtguard.WithAlgorithms("HS256"))
	if err != nil {
		fmt.Println(err)
		return
	}

	adminToken := "a long random token, kept out of the code" // for example from a file
	admin := http.StripPrefix("/admin", guard.AdminHandler())
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(got), []byte("Bearer "+adminToken)) != 1 {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		admin.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/admin/revocations",
		strings.NewReader(`{"jti":"leaked-token-id","exp":"2100-01-01T00:00:00Z"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))

	resp, err = http.Get(srv.URL + "/admin/revocations/leaked-token-id")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("without the credential:", resp.StatusCode)
	// Output:
	// 200 {"jti":"leaked-token-id","revoked":true,"until":"2100-01-01T00:00:00Z"}
	// without the credential: 401
}
