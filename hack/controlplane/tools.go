//go:build tools

// Package tools pins the two control-plane binaries in go.mod; nothing imports it.
// scripts/kube-build runs `go build` on these main packages.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
