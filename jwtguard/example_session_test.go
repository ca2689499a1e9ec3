package jwtguard_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// Sessions: a login mints a pair, a refresh rotates it, and a replayed
// refresh token ends the session.
func ExampleGuard_Refresh() {
	ctx := context.Background()
	store := memorystore.New()
	defer store.Close()
	key := []byte("an HS256 key of at least 32 bytes")
	guard, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return key, nil },
		jwtguard.WithAlgorithms("HS256"),
		jwtguard.WithSessions(jwtguard.Sessions{SigningMethod: jwt.SigningMethodHS256, SigningKey: key}))
	if err != nil {
		panic(err)
	}

	login, _ := guard.NewSession("alice", nil) // after checking alice's password
	next, err := guard.Refresh(ctx, login.RefreshToken)
	fmt.Println("refresh:", err)

	_, err = guard.Refresh(ctx, login.RefreshToken) // replayed by a thief
	fmt.Println("replay is reuse:", errors.Is(err, jwtguard.ErrRefreshReused))
	_, err = guard.Verify(ctx, next.AccessToken)
	fmt.Println("the session's newest access token:", err)

	other, _ := guard.NewSession("alice", nil) // another device
	_ = guard.LogoutAll(ctx, "alice")
	_, err = guard.Verify(ctx, other.AccessToken)
	fmt.Println("after LogoutAll:", err)
	// Output:
	// refresh: <nil>
	// replay is reuse: true
	// the session's newest access token: jwtguard: token revoked
	// after LogoutAll: jwtguard: token revoked
}

// A grace period: two tabs (or a retry after a lost response) present one
// refresh token twice and get the same new pair; once that pair's refresh
// token is used, the old one is reuse again.
func ExampleSessions_gracePeriod() {
	ctx := context.Background()
	store := memorystore.New()
	defer store.Close()
	key := []byte("an HS256 key of at least 32 bytes")
	guard, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return key, nil },
		jwtguard.WithAlgorithms("HS256"),
		jwtguard.WithSessions(jwtguard.Sessions{
			SigningMethod: jwt.SigningMethodHS256, SigningKey: key,
			GracePeriod: 10 * time.Second,
		}))
	if err != nil {
		panic(err)
	}

	login, _ := guard.NewSession("alice", nil)
	tab1, _ := guard.Refresh(ctx, login.RefreshToken)
	tab2, err := guard.Refresh(ctx, login.RefreshToken)
	fmt.Println("second refresh:", err, "- same pair:", tab2.RefreshToken == tab1.RefreshToken)

	_, _ = guard.Refresh(ctx, tab1.RefreshToken) // the chain moves on
	_, err = guard.Refresh(ctx, login.RefreshToken)
	fmt.Println("grandparent is reuse:", errors.Is(err, jwtguard.ErrRefreshReused))
	fmt.Printf("%+v\n", guard.SessionStats())
	// Output:
	// second refresh: <nil> - same pair: true
	// grandparent is reuse: true
	// {Refreshes:2 GraceReplays:1 ReusesDetected:1}
}
