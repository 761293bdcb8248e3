// big: embeds a 1.9 MiB asset with //go:embed, so the binary is ~4.5 MB. Startup cost: reading a big
// file into the page cache (cold) and UPX decompressing all of it on every start.
package main

import (
	_ "embed"
	"fmt"
	"os"
)

//go:embed asset.txt
var asset string

func main() {
	// Touch a little of the asset so it is kept; most of it stays unread, as a big program's
	// rodata mostly does.
	sum := 0
	for i := 0; i < len(asset); i += 65536 {
		sum += int(asset[i])
	}
	if len(os.Args) > 1 {
		fmt.Println(len(asset))
	}
	fmt.Println("big ok", sum > 0)
}
