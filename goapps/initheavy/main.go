// initheavy: many package-level initialisers doing real work before main (regexps compiled,
// tables and maps built, templates parsed), as large CLIs do. Startup cost: init() time, which
// GODEBUG=inittrace=1 breaks down by package.
package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"unicode"
)

var patterns = func() []*regexp.Regexp {
	srcs := []string{
		`^[a-z]+\[[0-9]+\]$`, `(?i)content-type:\s*([^;]+)`, `\b\d{4}-\d{2}-\d{2}\b`,
		`^(\w+)@(\w+)\.com$`, `[[:upper:]]{3,}`, `(foo|bar|baz)+qux`, `^v(\d+)\.(\d+)\.(\d+)$`,
		`\s+$`, `^#{1,6}\s`, `(?m)^\s*//.*$`, `[A-Fa-f0-9]{40}`, `(?s)<!--.*?-->`,
	}
	out := make([]*regexp.Regexp, 0, len(srcs)*8)
	for i := 0; i < 8; i++ {
		for _, s := range srcs {
			out = append(out, regexp.MustCompile(s))
		}
	}
	return out
}()

var crcTable = func() [256]uint32 {
	var t [256]uint32
	for i := range t {
		c := uint32(i)
		for k := 0; k < 8; k++ {
			if c&1 == 1 {
				c = 0xedb88320 ^ (c >> 1)
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

var words = func() map[string]int {
	m := make(map[string]int, 20000)
	for i := 0; i < 20000; i++ {
		m[fmt.Sprintf("w%05d", i)] = i
	}
	return m
}()

var upperRanges = func() int {
	n := 0
	for r := rune(0); r < 0x10000; r++ {
		if unicode.IsUpper(r) {
			n++
		}
	}
	return n
}()

var tmpl = template.Must(template.New("t").Parse(strings.Repeat(`{{range .}}{{.}} {{end}}`, 50)))

func main() {
	keys := make([]string, 0, 3)
	for k := range words {
		keys = append(keys, k)
		if len(keys) == 3 {
			break
		}
	}
	sort.Strings(keys)
	fmt.Println("initheavy ok", len(patterns), crcTable[1] != 0, len(words), upperRanges > 0, tmpl != nil)
}
