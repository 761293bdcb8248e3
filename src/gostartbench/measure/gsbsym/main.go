// gsbsym: function entry addresses of a Go binary: from its .symtab where it has one, else
// from its .gopclntab (built with -s -w, or stripped: the pclntab still names every function).
// Built once per toolchain by gostartbench (the pclntab format follows the toolchain).
// Usage: gsbsym BINARY NAME... → "source=symtab|gopclntab", then one "NAME=0xADDR" line per
// function found. ABI wrappers share their function's name in the pclntab: the largest (the
// real body) is kept.
package main

import (
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: gsbsym BINARY NAME...")
		os.Exit(2)
	}
	f, err := elf.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	want := map[string]bool{}
	for _, n := range os.Args[2:] {
		want[n] = true
	}
	if syms, err := f.Symbols(); err == nil && len(syms) > 0 {
		found := map[string]uint64{}
		for _, s := range syms {
			if want[s.Name] && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
				found[s.Name] = s.Value
			}
		}
		if len(found) == len(want) {
			fmt.Println("source=symtab")
			for _, n := range os.Args[2:] {
				fmt.Printf("%s=%#x\n", n, found[n])
			}
			return
		}
	}
	pcln := f.Section(".gopclntab")
	text := f.Section(".text")
	if pcln == nil || text == nil {
		fmt.Fprintln(os.Stderr, "no .gopclntab or .text")
		os.Exit(1)
	}
	data, err := pcln.Data()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	best := map[string]gosym.Func{}
	for _, fn := range tab.Funcs {
		if !want[fn.Name] {
			continue
		}
		if b, ok := best[fn.Name]; !ok || fn.End-fn.Entry > b.End-b.Entry {
			best[fn.Name] = fn
		}
	}
	fmt.Println("source=gopclntab")
	for _, n := range os.Args[2:] {
		if fn, ok := best[n]; ok {
			fmt.Printf("%s=%#x\n", n, fn.Entry)
		}
	}
}
