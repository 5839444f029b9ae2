package main

import (
	"testing"
	"time"
)

func TestParseBytesAndAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"123", 123, true}, {"500K", 500 << 10, true}, {"20m", 20 << 20, true}, {"10G", 10 << 30, true},
		{"1T", 1 << 40, true}, {"0", 0, false}, {"-5M", 0, false}, {"10x", 0, false}, {"", 0, false},
		{"99999999999T", 0, false},
	} {
		got, err := parseBytes(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseBytes(%q) = %d, %v", tc.in, got, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * 24 * time.Hour, true}, {"12h", 12 * time.Hour, true}, {"90m", 90 * time.Minute, true},
		{"0d", 0, false}, {"-1h", 0, false}, {"d", 0, false}, {"soon", 0, false},
	} {
		got, err := parseAge(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseAge(%q) = %v, %v", tc.in, got, err)
		}
	}
}
