// ByteSize: a size in bytes written in YAML as a number or with a unit (512KiB, 32MiB, 1GiB).
package config

import (
	"fmt"
	"strconv"
	"strings"
)

// ByteSize is a number of bytes.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// UnmarshalYAML accepts 33554432, "32MiB" or "32MB".
func (b *ByteSize) UnmarshalYAML(unmarshal func(any) error) error {
	var text string
	if err := unmarshal(&text); err != nil {
		return err
	}
	v, err := ParseByteSize(text)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseByteSize parses a size such as "32MiB".
func ParseByteSize(text string) (ByteSize, error) {
	text = strings.TrimSpace(text)
	factor := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(text, u.suffix) {
			text, factor = strings.TrimSpace(strings.TrimSuffix(text, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: want bytes, or a number with KiB, MiB, GiB, KB, MB or GB", text)
	}
	return ByteSize(n * factor), nil
}
