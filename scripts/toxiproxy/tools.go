//go:build tools

// Package tools pins Toxiproxy, the TCP fault proxy of the reliability tests:
// scripts/services.sh builds its server (`go build
// github.com/Shopify/toxiproxy/v2/cmd/server`) with the versions go.mod and go.sum
// name.
package tools

import _ "github.com/Shopify/toxiproxy/v2/cmd/server"
