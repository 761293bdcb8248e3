// delay: busy-waits in init() for GSB_DELAY_US microseconds (read from the environment at run
// time), so the calibration ladder injects a known delay into the same binary.
package main

import (
	"os"
	"strconv"
	"time"
)

func init() {
	us, _ := strconv.Atoi(os.Getenv("GSB_DELAY_US"))
	if us <= 0 {
		return
	}
	deadline := time.Now().Add(time.Duration(us) * time.Microsecond)
	for time.Now().Before(deadline) {
	}
}

func main() {}
