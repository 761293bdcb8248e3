// hello: the smallest useful Go program (fmt only). Startup cost: the Go runtime itself.
package main

import "fmt"

func main() { fmt.Println("Hello, Go!") }
