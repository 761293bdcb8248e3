// cobracli: a CLI on spf13/cobra that prints its version and exits.
// Startup cost: a small dependency tree (cobra, pflag) building its command tree.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

const version = "1.0.0"

func main() {
	root := &cobra.Command{Use: "cobracli", Short: "a CLI on a command framework"}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "print the version",
		Run:   func(*cobra.Command, []string) { fmt.Println("cobracli " + version) },
	})
	root.AddCommand(&cobra.Command{Use: "serve", Short: "not used: makes the tree realistic"})
	root.PersistentFlags().String("config", "", "config file")
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
