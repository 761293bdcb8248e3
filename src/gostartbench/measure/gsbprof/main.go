// gsbprof: the profile helper of gostartbench.
//
//	gsbprof sym BINARY      reads file-relative addresses (hex, one a line) on stdin and prints
//	                        "function<TAB>file<TAB>line" for each from the binary's own
//	                        .gopclntab (which -s -w and strip keep), or "?" where none covers it
//	gsbprof write OUT       reads a profile as JSON on stdin and writes it as pprof's
//	                        profile.proto, gzipped (github.com/google/pprof/profile)
//
// Built once per toolchain by gostartbench (the pclntab format follows the toolchain).
package main

import (
	"bufio"
	"debug/elf"
	"debug/gosym"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "sym" && os.Args[1] != "write") {
		fmt.Fprintln(os.Stderr, "usage: gsbprof sym BINARY | gsbprof write OUT.pb.gz")
		os.Exit(2)
	}
	var err error
	if os.Args[1] == "sym" {
		err = sym(os.Args[2])
	} else {
		err = write(os.Args[2])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// sym names file-relative addresses (what perf prints for a user frame) by the pclntab.
func sym(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	var tab *gosym.Table
	if pcln != nil && text != nil {
		data, err := pcln.Data()
		if err != nil {
			return err
		}
		if tab, err = gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr)); err != nil {
			return err
		}
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		off, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(in.Text()), "0x"), 16, 64)
		pc, ok := vaddr(f, off)
		if err != nil || !ok || tab == nil {
			fmt.Fprintln(out, "?")
			continue
		}
		file, line, fn := tab.PCToLine(pc)
		if fn == nil {
			fmt.Fprintln(out, "?")
			continue
		}
		fmt.Fprintf(out, "%s\t%s\t%d\n", fn.Name, file, line)
	}
	return in.Err()
}

// vaddr maps a file offset to the virtual address a PT_LOAD segment gives it.
func vaddr(f *elf.File, off uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && off >= p.Off && off < p.Off+p.Filesz {
			return off - p.Off + p.Vaddr, true
		}
	}
	return 0, false
}

// Input is what gostartbench hands over: sample types, the period, the frames (leaf first in
// each sample's stack) and every sample's values and labels.
type Input struct {
	SampleTypes [][2]string `json:"sample_types"` // (type, unit)
	PeriodType  [2]string   `json:"period_type"`
	Period      int64       `json:"period"`
	Frames      []Frame     `json:"frames"`
	Samples     []Sample    `json:"samples"`
	Comments    []string    `json:"comments"`
	DurationNs  int64       `json:"duration_ns"`
}

type Frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int64  `json:"line"`
	Mapping  string `json:"mapping"` // the file the frame is in ([kernel.kallsyms], ld.so, …)
}

type Sample struct {
	Stack  []int             `json:"stack"` // indices into Frames, leaf first
	Values []int64           `json:"values"`
	Labels map[string]string `json:"labels"`
}

func write(out string) error {
	var in Input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		return err
	}
	p := &profile.Profile{
		PeriodType:    &profile.ValueType{Type: in.PeriodType[0], Unit: in.PeriodType[1]},
		Period:        in.Period,
		Comments:      in.Comments,
		DurationNanos: in.DurationNs,
	}
	for _, st := range in.SampleTypes {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: st[0], Unit: st[1]})
	}
	maps := map[string]*profile.Mapping{}
	funcs := map[[2]string]*profile.Function{}
	locs := make([]*profile.Location, len(in.Frames))
	for i, fr := range in.Frames {
		m, ok := maps[fr.Mapping]
		if !ok {
			m = &profile.Mapping{ID: uint64(len(maps) + 1), File: fr.Mapping, HasFunctions: true}
			maps[fr.Mapping] = m
			p.Mapping = append(p.Mapping, m)
		}
		key := [2]string{fr.Function, fr.File}
		fn, ok := funcs[key]
		if !ok {
			fn = &profile.Function{ID: uint64(len(funcs) + 1), Name: fr.Function,
				SystemName: fr.Function, Filename: fr.File}
			funcs[key] = fn
			p.Function = append(p.Function, fn)
		}
		locs[i] = &profile.Location{ID: uint64(i + 1), Mapping: m,
			Line: []profile.Line{{Function: fn, Line: fr.Line}}}
		p.Location = append(p.Location, locs[i])
	}
	for _, s := range in.Samples {
		ps := &profile.Sample{Value: s.Values, Label: map[string][]string{}}
		for _, i := range s.Stack {
			ps.Location = append(ps.Location, locs[i])
		}
		for k, v := range s.Labels {
			ps.Label[k] = []string{v}
		}
		p.Sample = append(p.Sample, ps)
	}
	if err := p.CheckValid(); err != nil {
		return err
	}
	fh, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := p.Write(fh); err != nil { // gzipped profile.proto
		fh.Close()
		return err
	}
	return fh.Close()
}
