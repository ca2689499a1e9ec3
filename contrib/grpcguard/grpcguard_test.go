package grpcguard_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/contrib/grpcguard"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

var key = []byte("an HS256 key of at least 32 bytes")

// whoami answers every call with the subject of the token the interceptor
// put in the context, and fails when there is none.
type whoami struct {
	testpb.UnimplementedTestServiceServer
}

func subject(ctx context.Context) (string, error) {
	t, ok := jwtguard.TokenFromContext(ctx)
	if !ok {
		return "", status.Error(codes.Internal, "no token in the handler's context")
	}
	return t.Claims.GetSubject()
}

func (whoami) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	sub, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Username: sub}, nil
}

func (whoami) StreamingOutputCall(_ *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	sub, err := subject(stream.Context())
	if err != nil {
		return err
	}
	return stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: []byte(sub)}})
}

// serve runs a gRPC server with both interceptors of g over an in-memory
// listener until the test ends, and returns a client of it.
func serve(t *testing.T, g *jwtguard.Guard) testpb.TestServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(grpcguard.UnaryServerInterceptor(g)),
		grpc.StreamInterceptor(grpcguard.StreamServerInterceptor(g)),
	)
	testpb.RegisterTestServiceServer(srv, whoami{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		wg.Wait()
	})
	return testpb.NewTestServiceClient(conn)
}

func newGuard(t *testing.T, store blocklist.Store, opts ...jwtguard.Option) *jwtguard.Guard {
	t.Helper()
	g, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return key, nil },
		append([]jwtguard.Option{jwtguard.WithAlgorithms("HS256")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func token(t *testing.T, jti string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "jti": jti, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// call makes a unary and a streaming call with the given authorization
// metadata values, and returns the subject each answered with and its
// error.
func call(t *testing.T, c testpb.TestServiceClient, authorization ...string) (unarySub string, unaryErr error, streamSub string, streamErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, a := range authorization {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", a)
	}
	if res, err := c.UnaryCall(ctx, &testpb.SimpleRequest{}); err == nil {
		unarySub = res.Username
	} else {
		unaryErr = err
	}
	stream, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
	if err == nil {
		var res *testpb.StreamingOutputCallResponse
		if res, err = stream.Recv(); err == nil {
			streamSub = string(res.Payload.Body)
			if _, end := stream.Recv(); end != io.EOF {
				err = end
			}
		}
	}
	streamErr = err
	return
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	s, _ := status.FromError(err)
	if s.Code() != code || (msg != "" && s.Message() != msg) {
		t.Errorf("%s: %v; want %v %q", what, err, code, msg)
	}
}

func TestInterceptors(t *testing.T) {
	store := memorystore.New()
	t.Cleanup(func() { store.Close() })
	g := newGuard(t, store)
	c := serve(t, g)

	valid := token(t, "valid")
	revoked := token(t, "revoked")
	if err := g.Revoke(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}
	wrongKey, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte("another key, also 32 bytes long!"))

	t.Run("valid", func(t *testing.T) {
		for _, a := range []string{"Bearer " + valid, "bearer " + valid} {
			u, uerr, s, serr := call(t, c, a)
			if uerr != nil || u != "alice" || serr != nil || s != "alice" {
				t.Errorf("%.10s…: unary %q %v, stream %q %v; want alice twice", a, u, uerr, s, serr)
			}
		}
	})
	for _, tc := range []struct {
		name          string
		authorization []string
		msg           string
	}{
		{"no metadata", nil, "missing bearer token"},
		{"another scheme", []string{"Basic YWxpY2U6cHc="}, "missing bearer token"},
		{"empty bearer", []string{"Bearer "}, "invalid token"},
		{"not a JWT", []string{"Bearer abc"}, "invalid token"},
		{"wrong key", []string{"Bearer " + wrongKey}, "invalid token"},
		{"two values", []string{"Bearer " + valid, "Bearer " + valid}, "invalid token"},
		{"revoked", []string{"Bearer " + revoked}, "token revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, uerr, _, serr := call(t, c, tc.authorization...)
			wantCode(t, "unary", uerr, codes.Unauthenticated, tc.msg)
			wantCode(t, "stream", serr, codes.Unauthenticated, tc.msg)
		})
	}

	// Revoked while in use: the next call is refused.
	if err := g.Revoke(context.Background(), valid); err != nil {
		t.Fatal(err)
	}
	_, uerr, _, serr := call(t, c, "Bearer "+valid)
	wantCode(t, "unary after logout", uerr, codes.Unauthenticated, "token revoked")
	wantCode(t, "stream after logout", serr, codes.Unauthenticated, "token revoked")
}

// closedStore is a Store that cannot answer: every call fails.
func closedStore(t *testing.T) blocklist.Store {
	s := memorystore.New()
	s.Close()
	return s
}

func TestStoreDown(t *testing.T) {
	t.Run("fail closed", func(t *testing.T) {
		c := serve(t, newGuard(t, closedStore(t)))
		_, uerr, _, serr := call(t, c, "Bearer "+token(t, "x"))
		wantCode(t, "unary", uerr, codes.Unavailable, "token check unavailable")
		wantCode(t, "stream", serr, codes.Unavailable, "token check unavailable")
	})
	t.Run("fail open", func(t *testing.T) {
		var mu sync.Mutex
		var reported []string
		g := newGuard(t, closedStore(t), jwtguard.WithFailOpen(func(r *http.Request, err error) {
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, jwtguard.ErrInvalidToken) || r.Header.Get("Authorization") == "" {
				t.Errorf("reported %v for %v", err, r.Header)
			}
			reported = append(reported, r.Method+" "+r.URL.Path)
		}))
		c := serve(t, g)
		u, uerr, s, serr := call(t, c, "Bearer "+token(t, "x"))
		if uerr != nil || u != "alice" || serr != nil || s != "alice" {
			t.Errorf("unary %q %v, stream %q %v; want alice twice", u, uerr, s, serr)
		}
		// An invalid token is refused whether the Store answers or not.
		_, uerr, _, _ = call(t, c, "Bearer abc")
		wantCode(t, "invalid token, fail open", uerr, codes.Unauthenticated, "invalid token")
		mu.Lock()
		defer mu.Unlock()
		want := []string{"POST " + testpb.TestService_UnaryCall_FullMethodName, "POST " + testpb.TestService_StreamingOutputCall_FullMethodName}
		if len(reported) != 2 || reported[0] != want[0] || reported[1] != want[1] {
			t.Errorf("reported %q; want %q", reported, want)
		}
	})
}

// A Store that blocks until the call's deadline: the call ends with the
// deadline's code, not Unavailable.
type blockingStore struct{ blocklist.Store }

func (blockingStore) IsRevoked(ctx context.Context, _ string) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

func TestDeadline(t *testing.T) {
	c := serve(t, newGuard(t, blockingStore{closedStore(t)}))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token(t, "x"))
	_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
	wantCode(t, "unary past its deadline", err, codes.DeadlineExceeded, "")
}

func TestNilGuard(t *testing.T) {
	for name, f := range map[string]func(){
		"UnaryServerInterceptor":  func() { grpcguard.UnaryServerInterceptor(nil) },
		"StreamServerInterceptor": func() { grpcguard.StreamServerInterceptor(nil) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s(nil) did not panic", name)
				}
			}()
			f()
		}()
	}
}
