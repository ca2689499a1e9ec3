package grpcguard_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/jwtblocklist/blocklist/contrib/grpcguard"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// A gRPC server whose calls need a token that is not logged out. The
// handler reads the token with jwtguard.TokenFromContext.
func Example() {
	store := memorystore.New()
	defer store.Close()
	secret := []byte("an HS256 key of at least 32 bytes")
	guard, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return secret, nil },
		jwtguard.WithAlgorithms("HS256"))
	if err != nil {
		panic(err)
	}

	srv := grpc.NewServer(
		grpc.UnaryInterceptor(grpcguard.UnaryServerInterceptor(guard)),
		grpc.StreamInterceptor(grpcguard.StreamServerInterceptor(guard)),
	)
	testpb.RegisterTestServiceServer(srv, whoami{}) // answers with the token's sub
	lis := bufconn.Listen(1 << 20)                  // net.Listen("tcp", ":8443") in production
	go srv.Serve(lis)
	defer srv.Stop()

	conn, _ := grpc.NewClient("passthrough:///example",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "jti": "8d2f0c4e", "exp": time.Now().Add(15 * time.Minute).Unix(),
	}).SignedString(secret)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)

	res, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
	fmt.Println(res.GetUsername(), err)

	_ = guard.Revoke(ctx, token) // logout
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{})
	fmt.Println(status.Code(err), status.Convert(err).Message())
	// Output:
	// alice <nil>
	// Unauthenticated token revoked
}
