package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
)

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// decodeStat decodes the X-Docker-Container-Path-Stat header.
func decodeStat(h string) string {
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	return string(b)
}
