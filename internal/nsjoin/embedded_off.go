//go:build !nsenter_embedded

package nsjoin

var embedded []byte
