// noop: does nothing and exits 0. The instrument's floor: what spawning any Go binary costs.
package main

func main() {}
