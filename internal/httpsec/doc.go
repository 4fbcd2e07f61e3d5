// Package httpsec makes the daemon's HTTP listeners (the Pharos JSON ingest, the OTLP receiver,
// the admin endpoints) fit to face a network: optional TLS, optional mutual TLS, and optional
// bearer-token authentication, as the OpenTelemetry Collector's receivers and Vector's sources
// offer them.
//
// # Call order
//
//	g, err := httpsec.New(httpsec.Options{Listener: "ingest.otlp", CertFile: c, KeyFile: k,
//		ClientCAFile: ca, TokenFile: tokens, Registerer: reg, Logger: log})
//	l, err := g.Listen(ctx, "0.0.0.0:4318")         // TCP, wrapped in TLS when configured
//	go srv.Serve(l)                                  // srv.Handler = g.Handler(mux)
//	go g.Watch(ctx, 0)                               // reload when a file changes
//	err = g.Reload()                                 // e.g. on SIGHUP
//
// # Promises
//
// Tokens are read from a file, one per line (blank lines and # comments skipped), kept only as
// SHA-256 digests and compared with every digest in constant time: neither the match nor its
// position shows in the time taken. A request needs "Authorization: Bearer <token>"; without
// it, or with a wrong token, it is answered 401 with WWW-Authenticate: Bearer and never reaches
// the handler. With a client CA file the TLS handshake fails for a client that sends no
// certificate, or one the CAs do not sign for client authentication. Every refusal is counted,
// pharos_http_refused_total{listener, reason} (the Reason constants), and logged at warning
// level at most LogBurst times per LogPeriod, with the reason and the peer address; no token,
// and no line of the token file, is ever logged or put in an error.
//
// Reload (and Watch, on a change of a file's size, time or inode) reads every file again and
// swaps the whole state at once; if a file cannot be read or parsed, the previous state stays
// and the failure is logged and counted, pharos_http_reloads_total{listener, result}. A reloaded
// certificate serves new connections; tokens apply to the next request.
//
// # Concurrency
//
// Every method is safe for concurrent use.
package httpsec
