// Package proxy is the gateway: it authenticates apps by their certificates, routes
// each call to a vendor operation, attaches the credentials the app must never hold,
// and returns the vendor's answer scrubbed. It is the only package that knows the
// order of the pipeline (pipeline.go); everything it refuses fails closed.
package proxy
