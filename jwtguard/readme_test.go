package jwtguard_test

import (
	"os"
	"strings"
	"testing"
)

// The README's "minimal real server" is a copy of the marked part of
// example_server_test.go, which compiles and runs as an Example: the copy
// must not drift.
func TestReadmeMinimalServer(t *testing.T) {
	src, err := os.ReadFile("example_server_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, region, ok := strings.Cut(string(src), "// README: begin minimal server\n")
	region, _, ok2 := strings.Cut(region, "// README: end minimal server")
	if !ok || !ok2 {
		t.Fatal("example_server_test.go lacks its README markers")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+strings.Trim(region, "\n")+"\n```") {
		t.Error("README.md's minimal server differs from example_server_test.go; copy the part between the markers into it")
	}
}
