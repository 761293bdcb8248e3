// promexp: a Prometheus exporter (client_golang with the Go and process collectors and one
// counter), ready when its TCP port accepts. Startup cost: client_golang, protobuf and the
// collectors' registration.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9551", "listen address")
	flag.Parse()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	starts := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "promexp_starts_total", Help: "times this exporter started"})
	reg.MustRegister(starts)
	starts.Inc()
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	log.Fatal(http.ListenAndServe(*addr, nil))
}
