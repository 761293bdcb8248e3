// cgo: calls a C function through import "C". Needs CGO_ENABLED=1 and a C compiler; startup
// cost: the dynamic loader, libc and runtime/cgo's thread setup.
package main

/*
#include <stdlib.h>
static int answer(void) { return abs(-42); }
*/
import "C"

import "fmt"

func main() { fmt.Println("cgo says", int(C.answer())) }
