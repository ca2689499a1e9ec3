// Package grpcguard checks the JWT of every gRPC call with a jwtguard.Guard,
// so that a logged-out token is refused by gRPC services as by HTTP ones.
//
// Install UnaryServerInterceptor and StreamServerInterceptor on the
// server. A call carries its token as "authorization: Bearer <token>"
// metadata (what grpc credentials.PerRPCCredentials such as oauth.TokenSource
// send). The Guard checks it exactly as its HTTP middleware checks a
// request, at the same cost (one signature verification and one Store
// lookup), and the handler finds the verified token with
// jwtguard.TokenFromContext. A call without a valid token fails with
// codes.Unauthenticated; a Store that cannot answer fails it with
// codes.Unavailable, unless the Guard fails open (jwtguard.WithFailOpen).
//
// The module has its own go.mod, so that the blocklist module needs no
// gRPC.
package grpcguard

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/jwtblocklist/blocklist/jwtguard"
)

// UnaryServerInterceptor returns an interceptor that calls the handler only
// when the call carries a valid token that is not revoked, with a context
// that holds the token (jwtguard.TokenFromContext). Otherwise the call
// fails with:
//
//   - codes.Unauthenticated when the call has no bearer token in its
//     authorization metadata, when the token is invalid, or when it is
//     revoked (the status message says which, without detail);
//   - codes.Unavailable when the Store cannot answer, unless g fails open:
//     then the WithFailOpen function gets the error and an *http.Request
//     standing for the call (method POST, URL.Path the full gRPC method,
//     Header the authorization metadata, the call's context), and the call
//     goes on;
//   - the context's code (codes.Canceled or codes.DeadlineExceeded) when
//     the call's own context ended during the lookup.
//
// g's unauthorized and error handlers are not used. UnaryServerInterceptor
// panics when g is nil, as a server set up wrong should fail at start.
func UnaryServerInterceptor(g *jwtguard.Guard) grpc.UnaryServerInterceptor {
	mustGuard(g)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := authenticate(ctx, g, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns an interceptor that does for streaming
// calls what UnaryServerInterceptor does for unary ones, once, when the
// stream opens: the handler's stream has a Context that holds the token.
// It panics when g is nil.
func StreamServerInterceptor(g *jwtguard.Guard) grpc.StreamServerInterceptor {
	mustGuard(g)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := authenticate(ss.Context(), g, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &authenticatedStream{ServerStream: ss, ctx: ctx})
	}
}

func mustGuard(g *jwtguard.Guard) {
	if g == nil {
		panic("grpcguard: the Guard is nil")
	}
}

// authenticatedStream is a stream whose context holds the verified token.
type authenticatedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authenticatedStream) Context() context.Context { return s.ctx }

// authenticate checks the call's token with g.Authenticate, over the
// request a gRPC call is on the wire (an HTTP/2 POST to its full method),
// and returns the context holding the token or the call's status error.
func authenticate(ctx context.Context, g *jwtguard.Guard, fullMethod string) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r := &http.Request{
		Method:     http.MethodPost,
		URL:        &url.URL{Path: fullMethod},
		RequestURI: fullMethod,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     http.Header{},
	}
	if a := md.Get(":authority"); len(a) == 1 {
		r.Host = a[0]
	}
	// gRPC lowercases metadata keys; a call may carry a key more than once,
	// which the Guard refuses as it refuses two Authorization headers.
	for _, v := range md.Get("authorization") {
		r.Header.Add("Authorization", v)
	}
	authed, err := g.Authenticate(r.WithContext(ctx))
	if err == nil {
		return authed.Context(), nil
	}
	switch {
	case errors.Is(err, jwtguard.ErrNoToken):
		return nil, status.Error(codes.Unauthenticated, "missing bearer token")
	case errors.Is(err, jwtguard.ErrRevoked):
		return nil, status.Error(codes.Unauthenticated, "token revoked")
	case errors.Is(err, jwtguard.ErrInvalidToken):
		return nil, status.Error(codes.Unauthenticated, "invalid token")
	case ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	default:
		return nil, status.Error(codes.Unavailable, "token check unavailable")
	}
}
