module example.com/embed

go 1.26.0

require (
	ergo.services/ergo v1.999.310
	github.com/pharos-node/pharos-node v0.0.0
	github.com/rs/zerolog v1.35.1
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// Pharos Node itself, from this repository; a service outside it requires a released version.
replace github.com/pharos-node/pharos-node => ../..

// Every module that embeds Pharos Node needs this line: Ergo v3's vanity path does not resolve
// through every Go module proxy.
replace ergo.services/ergo => github.com/ergo-services/ergo v1.999.310
